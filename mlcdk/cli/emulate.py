"""`mlcdk emulate`: deploy a CDK app's stacks to a local AWS emulator (moto) with the real CDK CLI, read back what
was created, run checks, tear it all down.

Exit codes: 0 success; 1 a step failed (one line: ``error: <step> failed: <cause>``); 2 a usage error or something
the run needs is missing (the emulator extra, a CDK CLI, the app), one line; 128+N interrupted by signal N.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mlcdk.cli._common import PlainFlagsCommand, fail
from mlcdk.errors import ConfigurationError

app = typer.Typer()

#: How errors name each field of mlcdk.emulator.EmulateOptions on the command line.
FLAGS = {"app": "--app", "stacks": "--stack", "context": "--context", "region": "--region", "account": "--account",
         "cdk": "--cdk", "checks": "--check", "keep": "--keep", "directory": "the current directory"}


@app.command("emulate", cls=PlainFlagsCommand)
def emulate_command(
    app_command: Optional[str] = typer.Option(
        None, "--app", "-a", metavar="CMD|DIR", help="The app: a command (python3 app.py) or a cloud assembly directory, as the CDK "
                                  "CLI's --app. Default: the app of cdk.json in the current directory."),
    stack: Optional[list[str]] = typer.Option(
        None, "--stack", "-s", metavar="PATTERN", help="A stack to deploy (CDK CLI pattern, e.g. 'Prod/*'; repeatable); the stacks it "
                                    "depends on come too. Default: every stack of the app."),
    context: Optional[list[str]] = typer.Option(
        None, "--context", "-c", metavar="KEY=VALUE", help="KEY=VALUE context for the app, as cdk -c (repeatable)."),
    region: str = typer.Option("us-east-1", metavar="REGION", help="Where stacks that leave their region open deploy."),
    account: str = typer.Option("123456789012", metavar="ID", help="The account the emulator plays."),
    cdk: Optional[str] = typer.Option(
        None, metavar="PATH", help="The CDK CLI to run. Default: MLCDK_CDK, else ./node_modules/.bin/cdk, else cdk on PATH."),
    check: Optional[list[str]] = typer.Option(
        None, "--check", metavar="CMD", help="A shell command to run against the deployed stacks before the teardown, in the "
                              "app's directory with the emulator's endpoint and dummy credentials; it must exit 0 "
                              "(repeatable)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the run's temporary directory (moto.log, cdk.out).",
                              metavar=""),
) -> None:
    """Deploy the app's stacks to a local AWS emulator (moto), read back what was created and what moto skipped,
    and tear it all down. Needs the emulator extra (pip install 'mlcdk\\[emulator]') and a CDK CLI; no AWS account, no network."""
    from mlcdk.emulator.checks import CommandCheck
    from mlcdk.emulator.options import EmulateOptions, validate
    from mlcdk.emulator.run import main

    options = EmulateOptions(directory=Path.cwd(), app=app_command, stacks=tuple(stack or ()),
                             context=tuple(context or ()), region=region, account=account, cdk=cdk,
                             checks=tuple(CommandCheck(c) for c in check or ()), keep=keep)
    try:
        validate(options, FLAGS)
    except ConfigurationError as error:
        fail(str(error))
    raise typer.Exit(main(options))
