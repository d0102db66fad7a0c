"""`mlcdk advise`: the configurations that fit a model, best first, with prices, fit per device and reasons."""

from __future__ import annotations

import re
import sys
from typing import Any, Optional

import typer
from rich.table import Table

from mlcdk.cli._common import err, fail, out, print_json
from mlcdk.cli.plot import TERMINAL, PlotCommand, draw
from mlcdk.errors import ConfigurationError

app = typer.Typer()

#: The command line's name for each Workload field (and advise()'s baseline), used in every message.
FLAGS = {"task": "--task", "params": "--params", "model": "--model", "precision": "--precision",
         "regions": "--region", "accelerator": "--accelerator", "max_nodes": "--max-nodes",
         "max_price_per_hour_usd": "--max-price", "training_tokens": "--tokens", "context_tokens": "--context-tokens",
         "sequences": "--sequences", "memory_headroom": "--memory-headroom", "rank_by": "--rank",
         "max_days": "--max-days", "baseline": "--baseline", "purchase_option": "from --spot"}
#: Fields a message may name anywhere (not only as "field (value)" or "field:"), always meaning the option.
_ANYWHERE = ("max_nodes", "max_days", "max_price_per_hour_usd", "memory_headroom")
_NAMED = re.compile(r"\b(" + "|".join(f for f in FLAGS if f != "purchase_option") + r")\b(?=\s\(|:)")
_FREE = re.compile(r"\b(" + "|".join(_ANYWHERE) + r")\b")
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*$")


def flags(text: str) -> str:
    """A library message in the command line's words: field names become the flags that set them."""
    text = text.replace("params or model is required", "--params or --model is required")
    text = _NAMED.sub(lambda m: FLAGS[m[1]], text)
    text = _FREE.sub(lambda m: FLAGS[m[1]], text)
    return text.replace("use precision ", "use --precision ").replace("set precision ", "set --precision ")


def headroom_fraction(text: str) -> float:
    """--memory-headroom as a fraction: a percent from 0 to 50, written 10 or 10%.

    A bare number between 0 and 1 is refused as ambiguous (0.1 could mean 10% or 0.1%); write 0.1% for the latter.
    """
    from mlcdk.presets.sizing import MAX_MEMORY_HEADROOM

    most = MAX_MEMORY_HEADROOM * 100
    match = _PERCENT.match(text)
    allowed = (f"a percent from 0 to {most:g}, e.g. 10 or 10% (keeps 10% of each device's memory "
               "free)")
    if match is None:
        raise ConfigurationError(f"--memory-headroom ({text!r}) must be {allowed}")
    value = float(match[1])
    if not match[2] and 0 < value < 1:
        raise ConfigurationError(f"--memory-headroom ({text!r}) is a percent, so {value:g} means {value:g}%, not "
                                 f"{value:.0%}; write {value * 100:g} for {value:.0%}, or {value:g}% if you mean it")
    if value > most:  # the pattern takes digits only: no NaN or infinity reaches here
        raise ConfigurationError(f"--memory-headroom ({text!r}) must be {allowed}")
    return value / 100


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _advise_row(rank: int, r: Any, with_job: bool, with_baseline: bool, with_region: bool) -> list[str]:
    cells = [str(rank), r.instance_type, r.accelerator, str(r.nodes)] + ([r.region] if with_region else [])
    cells += [f"${r.hourly_cost_usd:,.2f}"]
    if with_job:
        cells += [_cell(r.estimated_days, ",.1f"), "n/a" if r.estimated_job_cost_usd is None
                  else f"${r.estimated_job_cost_usd:,.0f}"]
    else:
        cells += [f"${r.monthly_cost_usd:,.0f}"]
    if with_baseline:
        cells += ([f"{r.speedup_vs_baseline:,.1f}x" if r.speedup_vs_baseline is not None else "n/a"] if with_job
                  else []) + [_cell(r.cost_vs_baseline, ",.2f") + ("x" if r.cost_vs_baseline is not None else "")]
    standing = r.reason.split("; ", 1)[-1]  # the fit itself is in the memory column
    return cells + [f"{r.memory_needed_per_device_gib:,.1f}/{r.memory_per_device_gib:,.1f}",
                    "yes" if r.efa else "-", standing]


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
    context["region"] = top.region  # the region of the pick: with several regions it is the one that won
    context["stacks"] = stack  # only this stack is built, so the other's defaults need not fit the region
    sys.stdout.write(f"cdk deploy {stack} " + " ".join(f"-c {k}={v}" for k, v in context.items()) + "\n")
    for warning in top.warnings:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    try:
        settings.read_settings(context)
    except ConfigurationError as exc:
        err.print(f"warning: the app rejects this context as it stands: {exc}", highlight=False, markup=False)


@app.command("advise", cls=PlotCommand)
def advise_command(
    task: str = typer.Option(..., help="training, fine-tuning (full), lora or inference."),
    params: Optional[str] = typer.Option(None, help="Parameter count, e.g. 7B, 70B, 1.5T, 70e9 (at most 1e15)."),
    model: Optional[str] = typer.Option(None, help="A known architecture instead of --params, e.g. llama-3-70b."),
    precision: str = typer.Option("bf16", help="fp32, bf16, fp16, fp8, int8 or int4; the accelerator must run it."),
    region: Optional[list[str]] = typer.Option(
        None, help="Region(s), repeatable or comma-separated, or all. Default: every region in the catalog."),
    spot: bool = typer.Option(False, "--spot", metavar="", help="Rank at spot prices (the lowest dated AZ sample)."),
    accelerator: str = typer.Option("any", help="any (GPU or Neuron), trainium, inferentia, nvidia (or gpu) or cpu."),
    max_nodes: Optional[int] = typer.Option(None, help="Most nodes per configuration. Default: 64."),
    max_price: Optional[float] = typer.Option(None, help="Most USD per hour for the whole configuration."),
    tokens: Optional[str] = typer.Option(
        None, help="Training tokens, e.g. 1T: the job the days and dollars are for. Default: 20 per parameter."),
    rank: Optional[str] = typer.Option(
        None, help="job (the whole job's cost) or hourly. Default: job for training tasks, hourly for inference."),
    max_days: Optional[float] = typer.Option(None, help="Training: keep configurations that finish the job in this "
                                                        "many days."),
    memory_headroom: str = typer.Option(
        "10", help="Percent of each device's memory kept free (0-50, e.g. 10 or 10%): runtime context, collective "
                   "buffers, fragmentation."),
    baseline: Optional[str] = typer.Option(
        None, help="An instance type to compare with for the same job, e.g. m5a.large or p3.2xlarge."),
    context: Optional[int] = typer.Option(None, "--context-tokens", "--context",
                                          help="Inference: tokens per sequence in the KV cache (default 4096)."),
    sequences: Optional[int] = typer.Option(None, help="Inference: sequences served at once (default 1)."),
    top: int = typer.Option(5, min=1, help="How many configurations to show."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON instead of a table."),
    explain: bool = typer.Option(False, "--explain", metavar="", help="Also show why candidates were excluded."),
    emit_context: bool = typer.Option(False, "--emit-context", metavar="",
                                      help="Print only the `cdk deploy` line with -c flags for the top pick."),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="[FILE]",
                                       help="Plot cost against time for the shown configurations: in the terminal, "
                                            "or into FILE (.png, .svg, .pdf; the plot extra)."),
) -> None:
    """The configurations that fit a model, best first: training by the whole job's cost, inference by the hour.

    Exit codes: 0 something fits; 2 a bad option, or nothing fits (the message says what would).
    """
    from mlcdk.presets.advisor import advise
    from mlcdk.presets.sizing import DEFAULT_MAX_NODES, Workload

    try:
        if as_json and emit_context:
            raise ConfigurationError("--json and --emit-context cannot be combined: --emit-context prints a "
                                     "`cdk deploy` line, --json a document; choose one")
        if plot is not None and (emit_context or (plot == TERMINAL and as_json)):
            raise ConfigurationError("--plot draws the shown configurations, beside the table or into --plot FILE; "
                                     "it cannot be combined with --emit-context, nor without a FILE with --json")
        workload = Workload(task=task, params=params, model=model, precision=precision,
                            regions=() if region is None else ",".join(region),
                            purchase_option="spot" if spot else "on-demand", accelerator=accelerator,
                            max_price_per_hour_usd=max_price, training_tokens=tokens, context_tokens=context,
                            sequences=sequences, max_nodes=DEFAULT_MAX_NODES if max_nodes is None else max_nodes,
                            memory_headroom=headroom_fraction(memory_headroom), rank_by=rank, max_days=max_days)
        advice = advise(workload, explain=explain, baseline=baseline)
    except ConfigurationError as exc:
        fail(flags(str(exc)))
    if not advice:
        suggestion = advice.suggestion()
        fail(f"{workload.describe()} needs {advice.memory.total_gib:,.1f} GiB; "
             + (suggestion.message(FLAGS) if suggestion else
                "nothing fits, and no single change to the limits helps; --explain shows every exclusion"))
    if emit_context:
        _emit_context(advice)
        return
    shown = advice[:top]
    if plot is not None:
        try:
            drawn = draw(advice, shown, plot)  # a file is written now; the terminal's plot follows the table
        except ConfigurationError as exc:
            fail(str(exc))
    if as_json:
        document = {
            "workload": workload, "ranking": advice.ranking, "prices_as_of": advice.prices_as_of,
            "memory": {"total_gib": advice.memory.total_gib,
                       "parts": [{"label": p.label, "gib": p.bytes / 1024**3} for p in advice.memory.parts]},
            "job_tokens": advice.job_tokens, "reference_job": advice.reference_job, "baseline": advice.baseline,
            "fitting_configurations": len(advice), "recommendations": shown, "notes": advice.notes,
        }
        if explain:
            document["exclusions"] = advice.exclusions
        print_json(document)
        return
    _print_table(advice, shown, spot, explain)
    if plot == TERMINAL:
        sys.stdout.write(drawn)


def _print_table(advice: Any, shown: Any, spot: bool, explain: bool) -> None:
    workload = advice.workload
    with_job, with_baseline = workload.trains, advice.baseline is not None
    regions = sorted({r.region for r in advice})
    with_region = len(workload.regions) != 1  # one asked region: it is in the title
    from mlcdk.presets.advisor import RANK_BY_JOB_COST

    order = "cheapest job first" if advice.ranking == RANK_BY_JOB_COST else "cheapest per hour first"
    where = f" in {regions[0]}" if not with_region and regions else (
        f" across {len(regions)} regions" if len(regions) > 1 else "")
    table = Table(title=f"{workload.describe()}{where}: {len(shown)} of {len(advice)} fitting configurations, {order}")
    columns = ["#", "type", "accelerator", "nodes"] + (["region"] if with_region else []) + ["$/h"]
    columns += ["days", "job $"] if with_job else ["$/month"]
    if with_baseline:
        columns += (["speed-up"] if with_job else []) + ["cost ratio"]
    columns += ["GiB/device need/cap", "EFA", "reason"]
    for column in columns:  # names and figures keep their width; only the reason wraps
        table.add_column(column, justify="left" if column in ("type", "accelerator", "region", "EFA", "reason")
                         else "right", no_wrap=column in ("type", "accelerator", "region"),
                         min_width=16 if column == "reason" else None)
    for number, recommendation in enumerate(shown, 1):
        table.add_row(*_advise_row(number, recommendation, with_job, with_baseline, with_region))
    out.print(table)
    out.print(f"Memory: {advice.memory.summary()}.", highlight=False)
    out.print(f"Prices: {'spot (lowest dated AZ sample)' if spot else 'on-demand'}, as of {advice.prices_as_of}.",
              highlight=False)
    if with_baseline:
        base = advice.baseline
        what = "the same job on one node of it" if with_job else "its hourly cost in the same region"
        out.print(f"Baseline: {base.instance_type} ({base.accelerator}); speed-up and cost ratio are against {what}"
                  + (f"; n/a: {base.reason}" if base.reason and with_job else "") + ".", highlight=False)
    for note in advice.notes:
        out.print(f"Note: {flags(note)}.", highlight=False)
    for warning in dict.fromkeys(w for r in shown for w in r.warnings):
        out.print(f"Warning: {warning}.", highlight=False)
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
        table.add_row(kind, str(len(items)), names,
                      f"{example.instance_type} in {example.region}: {flags(example.reason)}")
    out.print(table)
