"""``mlcdk COMMAND`` imports the module of that command only, so ``advise`` and ``catalog`` start fast."""
from __future__ import annotations

import typer

from mlcdk import cli
from tests.harness import modules_loaded_by

COMMAND_MODULES = [f"mlcdk.cli.{m}" for m in ("advise", "catalog", "check", "diagram", "emulate", "images",
                                               "job_control", "jobs", "preflight", "presets")]


def test_the_command_table_names_every_command_of_the_whole_command_line():
    whole = typer.main.get_command(cli.app)
    assert sorted(whole.commands) == sorted(cli.COMMANDS) == sorted(
        ["advise", "cancel", "catalog", "check", "clusters", "diagram", "emulate", "images", "jobs", "logs",
         "preflight", "presets", "shell", "submit"])


def run_main(*argv: str) -> str:
    return ("import sys\nfrom mlcdk import cli\nsys.argv = ['mlcdk', " + ", ".join(map(repr, argv)) + "]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n")


def test_mlcdk_advise_and_catalog_import_their_own_command_module_only():
    assert modules_loaded_by("import mlcdk.cli", COMMAND_MODULES) == []
    assert modules_loaded_by(run_main("advise", "--model", "llama-3.1-8b", "--task", "inference", "--json"),
                             [*COMMAND_MODULES, "boto3"]) == ["mlcdk.cli.advise"]
    assert modules_loaded_by(run_main("catalog", "show", "trn1.32xlarge"), [*COMMAND_MODULES, "boto3"]) == [
        "mlcdk.cli.catalog"]
    # top-level help lists every command, so it builds the whole command line
    assert modules_loaded_by(run_main("--help"), COMMAND_MODULES) == COMMAND_MODULES
