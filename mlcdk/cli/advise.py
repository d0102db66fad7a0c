"""`mlcdk advise`: the cheapest instance configurations that fit a model."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer
from rich.table import Table

from mlcdk.cli._common import err, fail, out, print_json
from mlcdk.errors import ConfigurationError

app = typer.Typer()

#: How a suggestion names each Workload field on the command line.
_ADVISE_FLAGS = {"max_nodes": "--max-nodes", "max_price_per_hour_usd": "--max-price", "purchase_option": "from --spot",
                 "regions": "--region", "accelerator": "--accelerator", "precision": "--precision"}


def _advise_row(rank: int, r: Any, with_job: bool) -> list[str]:
    cells = [str(rank), r.instance_type, r.accelerator, str(r.nodes), r.region, f"${r.hourly_cost_usd:,.2f}"]
    if with_job:
        cells += [f"{r.estimated_days:,.1f}", f"${r.estimated_job_cost_usd:,.0f}"]
    else:
        cells += [f"${r.monthly_cost_usd:,.0f}"]
    return cells + [f"{r.memory_available_gib:,.0f}", "yes" if r.efa else "-", r.reason]


def _emit_context(advice: Any) -> None:
    """Print the `cdk deploy` line that realizes the top recommendation; warn on stderr where it falls short."""
    from mlcdk import settings

    top, workload = advice[0], advice.workload
    option = "spot" if workload.purchase_option == "spot" else "on-demand"
    if workload.trains:
        stack, context = "TrainingStack", {"instance_type": top.instance_type, "nodes": str(top.nodes),
                                           "purchase_option": option}
        from mlcdk.presets.workloads import engine_purchase_problem
        if engine_purchase_problem("batch", option, top.nodes):  # Batch runs multi-node jobs on demand only
            context["engine"] = "nodes"
    else:
        stack, context = "InferenceStack", {"inference_instance_type": top.instance_type,
                                            "inference_purchase_option": option}
    context["region"] = top.region
    context["stacks"] = stack  # only this stack is built, so the other's defaults need not fit the region
    sys.stdout.write(f"cdk deploy {stack} " + " ".join(f"-c {k}={v}" for k, v in context.items()) + "\n")
    try:
        settings.read_settings(context)
    except ConfigurationError as exc:
        err.print(f"warning: the app rejects this context as it stands: {exc}", highlight=False, markup=False)


@app.command("advise")
def advise_command(
    task: str = typer.Option(..., help="training, fine-tuning (full), lora or inference."),
    params: Optional[str] = typer.Option(None, help="Parameter count, e.g. 7B, 70B, 1.5T, 70e9."),
    model: Optional[str] = typer.Option(None, help="A known architecture instead of --params, e.g. llama-3-70b."),
    precision: str = typer.Option("bf16", help="fp32, bf16, fp16, fp8, int8 or int4."),
    region: Optional[list[str]] = typer.Option(
        None, help="Region(s), repeatable or comma-separated. Default: every region in the catalog."),
    spot: bool = typer.Option(False, "--spot", help="Rank at spot prices (the lowest dated AZ sample)."),
    accelerator: str = typer.Option("any", help="any (GPU or Neuron), trainium, inferentia, nvidia or cpu."),
    max_nodes: Optional[int] = typer.Option(None, help="Most nodes per configuration. Default: 64."),
    max_price: Optional[float] = typer.Option(None, help="Most USD per hour for the whole configuration."),
    tokens: Optional[str] = typer.Option(None, help="Training tokens, e.g. 1T: ranks by whole-job cost."),
    context: Optional[int] = typer.Option(None, help="Inference: tokens per sequence in the KV cache (default 4096)."),
    sequences: Optional[int] = typer.Option(None, help="Inference: sequences served at once (default 1)."),
    top: int = typer.Option(5, min=1, help="How many configurations to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    explain: bool = typer.Option(False, "--explain", help="Also show why candidates were excluded."),
    emit_context: bool = typer.Option(False, "--emit-context",
                                      help="Print only the `cdk deploy` line with -c flags for the top pick."),
) -> None:
    """The cheapest instance configurations that fit a model, ranked, with prices and reasons.

    Exit codes: 0 something fits; 2 a bad option, or nothing fits (the message says what would).
    """
    from mlcdk.presets.advisor import advise
    from mlcdk.presets.sizing import DEFAULT_MAX_NODES, Workload

    regions = tuple(part.strip() for item in region or () for part in item.split(",") if part.strip())
    try:
        workload = Workload(task=task, params=params, model=model, precision=precision, regions=regions,
                            purchase_option="spot" if spot else "on-demand", accelerator=accelerator,
                            max_price_per_hour_usd=max_price, training_tokens=tokens, context_tokens=context,
                            sequences=sequences, max_nodes=DEFAULT_MAX_NODES if max_nodes is None else max_nodes)
        advice = advise(workload, explain=explain)
    except ConfigurationError as exc:
        fail(str(exc))
    if not advice:
        suggestion = advice.suggestion()
        fail(f"{workload.describe()} needs {advice.memory.total_gib:,.1f} GiB; "
             + (suggestion.message(_ADVISE_FLAGS) if suggestion else
                "nothing fits, and no single change to the limits helps; --explain shows every exclusion"))
    if emit_context:
        _emit_context(advice)
        return
    shown = advice[:top]
    if as_json:
        document = {
            "workload": workload, "ranking": advice.ranking, "prices_as_of": advice.prices_as_of,
            "memory": {"total_gib": advice.memory.total_gib,
                       "parts": [{"label": p.label, "gib": p.bytes / 1024**3} for p in advice.memory.parts]},
            "fitting_configurations": len(advice), "recommendations": shown, "notes": advice.notes,
        }
        if explain:
            document["exclusions"] = advice.exclusions
        print_json(document)
        return
    with_job = advice.ranking == "job cost"
    table = Table(title=f"{workload.describe()}: {len(shown)} of {len(advice)} fitting configurations, "
                        f"cheapest {'job' if with_job else 'per hour'} first")
    columns = ["#", "type", "accelerator", "nodes", "region", "$/h"]
    columns += ["days", "job $"] if with_job else ["$/month"]
    for column in columns + ["mem GiB", "EFA", "reason"]:
        table.add_column(column, justify="left" if column in ("type", "accelerator", "region", "EFA", "reason")
                         else "right")
    for rank, recommendation in enumerate(shown, 1):
        table.add_row(*_advise_row(rank, recommendation, with_job))
    out.print(table)
    out.print(f"Memory: {advice.memory.summary()}.", highlight=False)
    out.print(f"Prices: {'spot (lowest dated AZ sample)' if spot else 'on-demand'}, as of {advice.prices_as_of}.",
              highlight=False)
    for note in advice.notes:
        out.print(f"Note: {note}.", highlight=False)
    if explain:
        _print_exclusions(advice.exclusions)


def _print_exclusions(exclusions: Any) -> None:
    by_kind: dict[str, list[Any]] = {}
    for exclusion in exclusions:
        by_kind.setdefault(exclusion.kind, []).append(exclusion)
    table = Table(title=f"{len(exclusions)} excluded candidates (instance type x region), by reason")
    for column in ("reason", "count", "types", "example"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for kind, items in by_kind.items():
        types = sorted({e.instance_type for e in items})
        names = ", ".join(types[:4]) + (f" +{len(types) - 4} more" if len(types) > 4 else "")
        example = items[0]
        table.add_row(kind, str(len(items)), names, f"{example.instance_type} in {example.region}: {example.reason}")
    out.print(table)
