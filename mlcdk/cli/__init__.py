"""The ``mlcdk`` command line: a thin layer that formats the library's answers as tables or JSON.

One module per command group: ``catalog``, ``presets``, ``images``, ``advise``, ``preflight``, ``jobs`` (clusters,
submit, jobs), ``job_control`` (logs, cancel, shell), ``emulate``, ``diagram`` and ``check``.
Exit codes: 0 success; 2 a usage or configuration error (one clear line on stderr, no traceback, for typer's own
usage errors too: see ``OneLineErrors``); 1 anything unexpected.
The package never imports aws_cdk, so ``catalog`` and ``advise`` start fast; boto3 is imported only inside the
commands that call AWS. ``mlcdk COMMAND`` imports the module of that command only (``COMMANDS``); ``app``, the
whole command line, is built on first use (``--help``, an unknown command, tests).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from mlcdk.cli._common import OneLineErrors, fail

__all__ = ["COMMANDS", "app", "fail", "main"]

#: Each top-level command: the module that defines it, and whether it is a group (``mlcdk catalog list``).
COMMANDS: dict[str, tuple[str, bool]] = {
    "catalog": ("catalog", True), "presets": ("presets", True), "images": ("images", True),
    "advise": ("advise", False), "clusters": ("jobs", False), "submit": ("jobs", False), "jobs": ("jobs", False),
    "logs": ("job_control", False), "cancel": ("job_control", False), "shell": ("job_control", False),
    "preflight": ("preflight", False), "emulate": ("emulate", False), "diagram": ("diagram", False),
    "check": ("check", False),
}


def build(commands: list[str] | None = None) -> typer.Typer:
    """The command line with ``commands`` (all of them when None), importing only their modules."""
    top = typer.Typer(help="ML-aware AWS infrastructure: instance catalog, presets, CDK constructs and training jobs.",
                      no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=OneLineErrors)
    added: set[str] = set()
    for name in commands or COMMANDS:
        module_name, group = COMMANDS[name]
        if module_name in added:
            continue
        added.add(module_name)
        module = importlib.import_module(f"mlcdk.cli.{module_name}")
        top.add_typer(module.app, name=name if group else None)
    return top


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = built = build()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in COMMANDS and "--help" not in sys.argv[1:] and "-h" not in sys.argv[1:]:
        build([command])()
    else:
        build()()
