"""`mlcdk advise`: the configurations that fit a model, best first, with prices, fit per device and reasons."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

import typer
from mlcdk.cli._common import err, fail, print_json
from mlcdk.cli.plot import TERMINAL, PlotCommand, draw
from mlcdk.errors import ConfigurationError

app = typer.Typer()

#: The command line's name for each Workload field (and advise()'s baseline), used in every message.
FLAGS = {"task": "--task", "params": "--params", "model": "--model", "precision": "--precision",
         "regions": "--region", "accelerator": "--accelerator", "max_nodes": "--max-nodes",
         "max_price_per_hour_usd": "--max-price", "training_tokens": "--tokens", "context_tokens": "--context-tokens",
         "sequences": "--sequences", "concurrency": "--concurrency", "input_tokens": "--input-tokens",
         "output_tokens": "--output-tokens", "memory_headroom": "--memory-headroom", "rank_by": "--rank",
         "max_days": "--max-days", "max_cost_usd": "--max-cost", "vcpu_quota": "--vcpu-quota",
         "lora_rank": "--lora-rank", "utilization": "--mfu", "tokens_per_device_step": "--micro-batch-tokens", "target_tokens_per_second": "--min-tokens-per-second",
         "baseline": "--baseline", "purchase_option": "from --spot"}
#: Fields a message may name anywhere (not only as "field (value)" or "field:"), always meaning the option.
_ANYWHERE = ("max_nodes", "max_days", "max_price_per_hour_usd", "memory_headroom", "max_cost_usd", "vcpu_quota",
             "target_tokens_per_second")
_NAMED = re.compile(r"\b(" + "|".join(f for f in FLAGS if f != "purchase_option") + r")\b(?=\s\(|:)")
_FREE = re.compile(r"\b(" + "|".join(_ANYWHERE) + r")\b")
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*$")


def flags(text: str) -> str:
    """A library message in the command line's words: field names become the flags that set them."""
    text = text.replace("params or model is required", "--params or --model is required")
    text = text.replace("applies to serving tasks only", "applies to --task inference and batch-inference only")
    text = _NAMED.sub(lambda m: FLAGS[m[1]], text)
    text = _FREE.sub(lambda m: FLAGS[m[1]], text)
    return text.replace("use precision ", "use --precision ").replace("set precision ", "set --precision ")


def percent_fraction(text: str, flag: str, most: float, example: str) -> float:
    """A percent flag as a fraction: from 0 to ``most`` percent, written 10 or 10%.

    A bare number between 0 and 1 is refused as ambiguous (0.1 could mean 10% or 0.1%); write 0.1% for the latter.
    """
    match = _PERCENT.match(text)
    allowed = f"a percent from 0 to {most:g}, e.g. {example}"
    if match is None:
        raise ConfigurationError(f"{flag} ({text!r}) must be {allowed}")
    value = float(match[1])
    if not match[2] and 0 < value < 1:
        raise ConfigurationError(f"{flag} ({text!r}) is a percent, so {value:g} means {value:g}%, not "
                                 f"{value:.0%}; write {value * 100:g} for {value:.0%}, or {value:g}% if you mean it")
    if value > most:  # the pattern takes digits only: no NaN or infinity reaches here
        raise ConfigurationError(f"{flag} ({text!r}) must be {allowed}")
    return value / 100


def headroom_fraction(text: str) -> float:
    """--memory-headroom as a fraction: a percent from 0 to 50, written 10 or 10%."""
    from mlcdk.presets.sizing import MAX_MEMORY_HEADROOM

    return percent_fraction(text, "--memory-headroom", MAX_MEMORY_HEADROOM * 100,
                            "10 or 10% (keeps 10% of each device's memory free)")


def mfu_fraction(text: str | None) -> float | None:
    """--mfu as a fraction above 0 and at most 1: a percent written 40 or 40%."""
    if text is None:
        return None
    value = percent_fraction(text, "--mfu", 100, "40 or 40% (40% of the dense peak)")
    if value == 0:
        raise ConfigurationError(f"--mfu ({text!r}) must be above 0%")
    return value


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


#: The options of `mlcdk advise`, by parameter name: kept apart from the command's signature, which names
#: each one with its type.
OPTIONS = {
    "task": typer.Option(..., help="training, fine-tuning (full), lora, inference or batch-inference."),
    "params": typer.Option(None, help="Parameter count, e.g. 7B, 70B, 1.5T, 70e9 (at most 1e15)."),
    "model": typer.Option(None, help="Instead of --params: a known name (llama-3-70b), a Hugging Face ID "
                                     "(meta-llama/Llama-3.1-8B-Instruct, read offline from the local cache) or a "
                                     "config.json path."),
    "precision": typer.Option("bf16", help="fp32, bf16, fp16, fp8, int8 or int4; the accelerator must run it."),
    "region": typer.Option(None, help="Region(s), repeatable or comma-separated, or all. Default: every region in "
                                      "the catalog."),
    "spot": typer.Option(False, "--spot", metavar="", help="Rank at spot prices (the lowest dated AZ sample)."),
    "accelerator": typer.Option("any", help="any (GPU or Neuron), trainium, inferentia, nvidia (or gpu) or cpu."),
    "max_nodes": typer.Option(None, help="Most nodes per configuration. Default: 64."),
    "max_price": typer.Option(None, help="Most USD per hour for the whole configuration."),
    "max_cost": typer.Option(None, help="Training: the most USD the whole job may cost."),
    "vcpu_quota": typer.Option(None, help="Your account's vCPU quota for the instance family (mlcdk preflight reads "
                                          "it): caps the nodes."),
    "tokens": typer.Option(None, help="Training tokens, e.g. 1T: the job the time and dollars are for. Default: 20 "
                                      "per parameter for training, 79.9M (Stanford Alpaca, 3 epochs) for "
                                      "fine-tuning and lora."),
    "lora_rank": typer.Option(None, help="LoRA: adapter rank on every linear layer (default 16)."),
    "micro_batch_tokens": typer.Option(None, help="Training: tokens per device per micro-batch (default 4096); sizes "
                                                  "LoRA's activations and FSDP's communication per step."),
    "mfu": typer.Option(None, help="Model FLOPs utilization in percent (e.g. 40), instead of the sourced table by "
                                   "accelerator and model size."),
    "rank": typer.Option(None, help="job (the whole job's cost), tokens (cost per million output tokens) or hourly. "
                                    "Default: job for training tasks, tokens for serving."),
    "max_days": typer.Option(None, help="Training: finish the job in this many days, adding nodes up to "
                                        "--max-nodes."),
    "memory_headroom": typer.Option("10", help="Percent of each device's memory kept free (0-50, e.g. 10 or 10%): "
                                               "runtime context, collective buffers, fragmentation."),
    "baseline": typer.Option(None, help="An instance type to compare with for the same job, e.g. m5a.large or "
                                        "p3.2xlarge."),
    "context": typer.Option(None, "--context-tokens", "--context",
                            help="Serving: tokens per sequence in the KV cache (default: input + output, else 4096)."),
    "concurrency": typer.Option(None, "--concurrency", "--sequences",
                                help="Serving: sequences at once; the KV cache holds them all (default 1; "
                                     "batch-inference: as many as fit, up to 256)."),
    "input_tokens": typer.Option(None, help="Serving: prompt tokens per request (default 1024)."),
    "output_tokens": typer.Option(None, help="Serving: generated tokens per request (default 128)."),
    "min_tokens_per_second": typer.Option(None, help="Serving: keep configurations that generate at least this many "
                                                     "output tokens per second."),
    "top": typer.Option(5, min=1, help="How many configurations to show."),
    "as_json": typer.Option(False, "--json", metavar="", help="Print JSON instead of a table."),
    "explain": typer.Option(False, "--explain", metavar="", help="Also show why candidates were excluded."),
    "emit_context": typer.Option(False, "--emit-context", metavar="",
                                 help="Print only the `cdk deploy` line with -c flags for the top pick."),
    "plot": typer.Option(None, "--plot", metavar="[FILE]",
                         help="Plot cost against time for the shown configurations: in the terminal, or into FILE "
                              "(.png, .svg, .pdf; the plot extra)."),
}


@app.command("advise", cls=PlotCommand)
def advise_command(
    task: str = OPTIONS["task"],
    params: Optional[str] = OPTIONS["params"],
    model: Optional[str] = OPTIONS["model"],
    precision: str = OPTIONS["precision"],
    region: Optional[list[str]] = OPTIONS["region"],
    spot: bool = OPTIONS["spot"],
    accelerator: str = OPTIONS["accelerator"],
    max_nodes: Optional[int] = OPTIONS["max_nodes"],
    max_price: Optional[float] = OPTIONS["max_price"],
    max_cost: Optional[float] = OPTIONS["max_cost"],
    vcpu_quota: Optional[int] = OPTIONS["vcpu_quota"],
    tokens: Optional[str] = OPTIONS["tokens"],
    lora_rank: Optional[int] = OPTIONS["lora_rank"],
    micro_batch_tokens: Optional[int] = OPTIONS["micro_batch_tokens"],
    mfu: Optional[str] = OPTIONS["mfu"],
    rank: Optional[str] = OPTIONS["rank"],
    max_days: Optional[float] = OPTIONS["max_days"],
    memory_headroom: str = OPTIONS["memory_headroom"],
    baseline: Optional[str] = OPTIONS["baseline"],
    context: Optional[int] = OPTIONS["context"],
    concurrency: Optional[int] = OPTIONS["concurrency"],
    input_tokens: Optional[int] = OPTIONS["input_tokens"],
    output_tokens: Optional[int] = OPTIONS["output_tokens"],
    min_tokens_per_second: Optional[float] = OPTIONS["min_tokens_per_second"],
    top: int = OPTIONS["top"],
    as_json: bool = OPTIONS["as_json"],
    explain: bool = OPTIONS["explain"],
    emit_context: bool = OPTIONS["emit_context"],
    plot: Optional[str] = OPTIONS["plot"],
) -> None:
    """The configurations that fit a model, best first: training by the whole job's cost, serving by the cost per
    million output tokens.

    Exit codes: 0 something fits; 2 a bad option, or nothing fits (the message says what would).
    """
    from mlcdk.advice.advisor import advise
    from mlcdk.presets.sizing import DEFAULT_MAX_NODES, SizingRules, Workload

    try:
        _check_outputs(as_json, emit_context, plot)
        rules = SizingRules(utilization=mfu_fraction(mfu), **(
            {} if micro_batch_tokens is None else {"tokens_per_device_step": micro_batch_tokens}))
        workload = Workload(task=task, params=params, model=model, precision=precision,
                            regions=() if region is None else ",".join(region),
                            purchase_option="spot" if spot else "on-demand", accelerator=accelerator,
                            max_price_per_hour_usd=max_price, max_cost_usd=max_cost, vcpu_quota=vcpu_quota,
                            training_tokens=tokens, lora_rank=lora_rank, context_tokens=context,
                            concurrency=concurrency, input_tokens=input_tokens, output_tokens=output_tokens,
                            target_tokens_per_second=min_tokens_per_second,
                            max_nodes=DEFAULT_MAX_NODES if max_nodes is None else max_nodes,
                            memory_headroom=headroom_fraction(memory_headroom), rank_by=rank, max_days=max_days)
        advice = advise(workload, rules=rules, explain=explain, baseline=baseline)
    except ConfigurationError as exc:
        fail(flags(str(exc)))
    _show(advice, Shown(top=top, as_json=as_json, explain=explain, emit_context=emit_context, plot=plot, spot=spot))


def _check_outputs(as_json: bool, emit_context: bool, plot: str | None) -> None:
    """Refuse output options that cannot go together."""
    if as_json and emit_context:
        raise ConfigurationError("--json and --emit-context cannot be combined: --emit-context prints a "
                                 "`cdk deploy` line, --json a document; choose one")
    if plot is not None and (emit_context or (plot == TERMINAL and as_json)):
        raise ConfigurationError("--plot draws the shown configurations, beside the table or into --plot FILE; "
                                 "it cannot be combined with --emit-context, nor without a FILE with --json")


@dataclass(frozen=True)
class Shown:
    """How `mlcdk advise` shows its answer: how many configurations, and in which form."""

    top: int
    as_json: bool
    explain: bool
    emit_context: bool
    plot: str | None
    spot: bool


def _show(advice: Any, shown: Shown) -> None:
    """Print the advice as the options ask: the `cdk deploy` line, a JSON document, or the table (and a plot)."""
    if not advice:
        suggestion = advice.suggestion()
        fail(f"{advice.workload.describe()} needs {advice.memory.total_gib:,.1f} GiB; "
             + (suggestion.message(FLAGS) if suggestion else
                "nothing fits, and no single change to the limits helps; --explain shows every exclusion"))
    if shown.emit_context:
        _emit_context(advice)
        return
    best = advice[:shown.top]
    if shown.plot is not None:
        try:
            drawn = draw(advice, best, shown.plot)  # a file is written now; the terminal's plot follows the table
        except ConfigurationError as exc:
            fail(str(exc))
    if shown.as_json:
        _print_document(advice, best, shown.explain)
        return
    from mlcdk.cli.advise_table import print_table

    print_table(advice, best, shown.spot, shown.explain, flags)
    if shown.plot == TERMINAL:
        sys.stdout.write(drawn)


def _print_document(advice: Any, best: Any, explain: bool) -> None:
    """The advice as one JSON document (--json)."""
    document = {
        "workload": advice.workload, "ranking": advice.ranking, "prices_as_of": advice.prices_as_of,
        "memory": {"total_gib": advice.memory.total_gib,
                   "parts": [{"label": p.label, "gib": p.bytes / 1024**3} for p in advice.memory.parts]},
        "job_tokens": advice.job_tokens, "reference_job": advice.reference_job, "baseline": advice.baseline,
        "fitting_configurations": len(advice), "recommendations": best, "notes": advice.notes,
    }
    if explain:
        document["exclusions"] = advice.exclusions
    print_json(document)
