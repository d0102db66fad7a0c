"""`mlcdk diagram STACK`: a picture of a synthesized stack, read from the cloud assembly (never imports aws_cdk)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mlcdk.cli._common import PlainFlagsCommand, fail, plain
from mlcdk.errors import ConfigurationError

app = typer.Typer()

FORMATS = ("mermaid", "markdown", "svg", "json")
#: The format an --output file's suffix implies when --format is not given.
FORMAT_BY_SUFFIX = {".svg": "svg", ".json": "json", ".md": "markdown", ".mmd": "mermaid", ".mermaid": "mermaid"}


def output_format(requested: Optional[str], output: Optional[Path]) -> str:
    if requested is None:
        return FORMAT_BY_SUFFIX.get(output.suffix.lower(), "mermaid") if output else "mermaid"
    if requested not in FORMATS:
        raise ConfigurationError(f"--format ({requested!r}) must be one of {', '.join(FORMATS)}")
    return requested


@app.command("diagram", cls=PlainFlagsCommand)
def diagram_command(
    stack: str = typer.Argument(..., metavar="STACK", help="The stack to draw, as `cdk ls` lists it, e.g. "
                                                           "TrainingStack."),
    assembly: Path = typer.Option(Path("cdk.out"), "--assembly", "-a", metavar="DIR",
                                  help="The cloud assembly folder that `cdk synth` wrote."),
    synth: bool = typer.Option(False, "--synth", metavar="",
                               help="Run `cdk synth` first (the real CDK CLI, on the app of ./cdk.json), into "
                                    "--assembly."),
    context: Optional[list[str]] = typer.Option(None, "--context", "-c", metavar="KEY=VALUE",
                                                help="With --synth: a context value key=value, as `cdk synth -c`; "
                                                     "repeatable."),
    format_: Optional[str] = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                          help="mermaid, markdown (a ```mermaid block), svg (the svg extra) or "
                                               "json. Default: from --output's suffix, else mermaid."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write to this file instead of stdout."),
) -> None:
    """Draw STACK: its network, engine, storage, security and guardrail resources, boxed by construct, with
    instance types and node counts. Reads an existing assembly (default ./cdk.out), or synthesizes one with --synth.

    Exit codes: 0 drawn; 2 a bad option, no assembly, or no such stack; 1 `cdk synth` failed.
    """
    from mlcdk import diagram  # on use only: every command's start-up imports this module

    try:
        chosen = output_format(format_, output)
        if context and not synth:
            raise ConfigurationError("--context is for --synth: the assembly at --assembly is already synthesized")
        if synth:
            from mlcdk.diagram.synth import synth as run_synth

            code = run_synth(assembly, context or ())
            if code:
                fail(f"`cdk synth` failed (exit {code}); its output is above", code=1)
        text = _render(diagram.read(assembly, stack), chosen)
    except ConfigurationError as exc:
        fail(str(exc))
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"--output ({str(output)!r}) cannot be written: {exc.strerror or exc}")


def _render(picture: Any, chosen: str) -> str:
    """``picture`` (a mlcdk.diagram.StackDiagram) as text in the ``chosen`` format."""
    from mlcdk.diagram import dot, mermaid

    if chosen == "svg":
        return dot.render_svg(picture)
    if chosen == "json":
        return json.dumps(plain(picture), indent=1, sort_keys=True) + "\n"
    text = mermaid.render(picture)
    return f"```mermaid\n{text}```\n" if chosen == "markdown" else text
