"""The ``mlcdk`` command line: a thin layer that formats the library's answers as tables or JSON.

One module per command group: ``catalog``, ``presets``, ``images``, ``advise``, ``preflight``, ``jobs`` (clusters,
submit, jobs), ``job_control`` (logs, cancel, shell), ``emulate``, ``diagram`` and ``check``.
Exit codes: 0 success; 2 a usage or configuration error (one clear line on stderr, no traceback, for typer's own
usage errors too: see ``OneLineErrors``); 1 anything unexpected.
The package never imports aws_cdk, so ``catalog`` and ``advise`` start fast; boto3 is imported only inside the
commands that call AWS.
"""

from __future__ import annotations

import typer

from mlcdk.cli import advise, catalog, check, diagram, emulate, images, job_control, jobs, preflight, presets
from mlcdk.cli._common import OneLineErrors, fail

__all__ = ["app", "fail", "main"]

app = typer.Typer(help="ML-aware AWS infrastructure: instance catalog, presets, CDK constructs and training jobs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=OneLineErrors)
app.add_typer(catalog.app, name="catalog")
app.add_typer(presets.app, name="presets")
app.add_typer(images.app, name="images")
app.add_typer(advise.app)
app.add_typer(jobs.app)
app.add_typer(job_control.app)
app.add_typer(preflight.app)
app.add_typer(emulate.app)
app.add_typer(diagram.app)
app.add_typer(check.app)


def main() -> None:
    app()
