"""`mlcdk presets list|show`: the named workload presets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mlcdk.cli._common import fail, out, print_json
from mlcdk.errors import ConfigurationError

app = typer.Typer(help="Named workload presets.", no_args_is_help=True)


@app.command("list")
def presets_list(
    file: Optional[Path] = typer.Option(None, help="Also load presets from this YAML or JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the named workload presets."""
    from mlcdk.presets import workloads

    try:
        presets = workloads.all_presets(file)
    except ConfigurationError as exc:
        fail(str(exc))
    if as_json:
        print_json(presets)
        return
    table = Table(title=f"{len(presets)} presets")
    for column in ("name", "task", "instance type", "size", "purchase", "description"):
        table.add_column(column)
    for p in presets.values():
        size = f"{p.nodes} node(s)" if p.task != "inference" else f"{p.min_capacity}-{p.max_capacity}"
        table.add_row(p.name, p.task, p.instance_type, size, p.purchase_option, p.description)
    out.print(table)


@app.command("show")
def presets_show(
    name: str = typer.Argument(..., help="e.g. llm-pretrain-trainium"),
    file: Optional[Path] = typer.Option(None, help="Also load presets from this YAML or JSON file."),
) -> None:
    """Every setting of one preset, with its source and reason."""
    from mlcdk.presets import workloads

    try:
        preset = workloads.get(name, file)
    except ConfigurationError as exc:
        fail(str(exc))
    print_json(preset)
