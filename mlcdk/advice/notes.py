"""What an :class:`~mlcdk.advice.results.Advice` says besides its table: the notes on its rules and figures, and
the baseline it compares with (pure Python, no aws_cdk)."""

from __future__ import annotations

from collections.abc import Sequence

from mlcdk.advice import fitting, training_time
from mlcdk.advice.candidates import Context
from mlcdk.advice.results import Baseline, Recommendation
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.precision import device_name, precision_problem
from mlcdk.presets.sizing import FINE_TUNING_REFERENCE_TOKENS, MAX_BATCH_SEQUENCES, REFERENCE_TOKENS_PER_PARAM


def count(value: float) -> str:
    """A count with the largest unit: 1.4T, 79.87M."""
    scale = next(((unit, size) for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)) if value >= size), ("", 1))
    return f"{value / scale[1]:.4g}{scale[0]}"


def baseline_for(spec: InstanceSpec, context: Context) -> Baseline:
    """One node of ``spec`` running the same job, whether or not the job fits it (a yardstick, not a fit)."""
    workload, acc = context.workload, spec.accelerator
    name = device_name(spec)
    prices = {r: p for r in context.regions for p, problem in [fitting.price_in(spec, r, workload.purchase_option
                                                                                == "spot")] if problem is None}
    seconds = training_time.plan(spec, 1, context.flops, workload, context.rules).seconds
    if context.flops is None:
        reason = "serving has no job, so only the hourly cost is compared"
    elif acc is None:
        reason = f"{spec.instance_type} is CPU-only, and the catalog has no sourced CPU throughput figure"
    elif precision_problem(name, workload.precision, workload.task) is not None:
        reason = f"{name} cannot run {workload.task} in {workload.precision} (data/precision.json)"
    elif seconds is None:
        reason = f"no sourced {workload.precision} throughput figure for {name}"
    else:
        reason = None
    if not prices:
        regions = context.regions
        where = ", ".join(regions) if len(regions) <= 3 else f"any of {len(regions)} regions"
        reason = (f"{reason}; " if reason else "") + f"it has no price in {where}, so no cost is compared"
    return Baseline(spec.instance_type, "CPU" if acc is None else f"{acc.count}x {acc.name}", seconds, prices, reason)


def advice_notes(context: Context, recommendations: Sequence[Recommendation], base: Baseline | None) -> tuple[str, ...]:
    workload = context.workload
    notes = [f"a configuration fits when its need per device is at most {1 - workload.memory_headroom:.0%} of each "
             f"device's memory (memory_headroom {workload.memory_headroom:.0%}: runtime context, collective buffers, "
             "fragmentation), and a node's host memory holds its share of the weights while they load"]
    notes += _training_notes(context, recommendations) if workload.trains else _serving_notes(context, recommendations)
    unknown = sorted({r.accelerator.split("x ", 1)[-1] for r in recommendations if not r.throughput_known})
    if unknown and workload.rank_by != "hourly":
        notes.append(f"no sourced {'throughput' if workload.trains else 'serving'} figure for {', '.join(unknown)} at "
                     f"{workload.precision}: their {'days and job cost are' if workload.trains else 'throughput is'} "
                     "unknown, and they are ranked after every configuration with one, by hourly cost")
    if base is not None:
        if base.reason is not None:
            notes.append(f"baseline {base.instance_type}: {base.reason}")
        elif workload.trains:
            notes.append(f"baseline {base.instance_type} ({base.accelerator}): one node takes "
                         f"{base.job_seconds / 86400:,.1f} days for the job, whether or not the job fits its memory")
    return tuple(notes)


def _training_notes(context: Context, recommendations: Sequence[Recommendation]) -> list[str]:
    workload, rules = context.workload, context.rules
    notes = []
    if workload.training_tokens is None:
        reference = (f"a reference job of {REFERENCE_TOKENS_PER_PARAM} tokens per parameter ({count(workload.job_tokens)}"
                     " tokens; Hoffmann et al. 2022)" if workload.task == "training" else
                     f"a reference fine-tuning job of {count(FINE_TUNING_REFERENCE_TOKENS)} tokens (Stanford Alpaca: "
                     "52,002 examples of up to 512 tokens, 3 epochs)")
        notes.append(f"days and job cost are for {reference}; give the job's token count for yours")
    utilization = (f"{rules.utilization:.0%}, as given" if rules.utilization is not None else
                   "the model FLOPs utilization of published runs by accelerator and model size, data/utilization.json")
    notes.append(f"job time = FLOPs over the devices' dense peak at the job's precision x {utilization}; plus FSDP's "
                 "all-gathers and reduce-scatters where they outlast compute; the time is for the node count shown: "
                 "the fewest that fit" + (", or that finish in max_days" if workload.max_days else ""))
    bound = [r for r in recommendations if r.bound in (training_time.NETWORK, training_time.INTRA_NODE)]
    if bound:
        names = sorted({f"{r.nodes} x {r.instance_type}" for r in bound})
        notes.append(f"network-bound or link-bound: {', '.join(names[:4])}{' and others' if len(names) > 4 else ''} "
                     "spend longer moving parameters and gradients than computing (see bound_detail, or --explain)")
    return notes


def _serving_notes(context: Context, recommendations: Sequence[Recommendation]) -> list[str]:
    workload = context.workload
    concurrency = (f"{workload.concurrency} sequence(s) at once" if workload.concurrency else
                   f"as many sequences as memory holds, up to {MAX_BATCH_SEQUENCES}")
    notes = [f"throughput: requests of {workload.input_tokens:,} tokens in and {workload.output_tokens:,} out, "
             f"{concurrency}; prefill at the devices' peak FLOPs and decode at their memory bandwidth, at the share "
             "each vendor's published serving benchmark reaches (data/utilization.json); cost per million output "
             "tokens = hourly cost / output tokens per hour"]
    if workload.architecture is None:
        notes.append("a bare parameter count has no attention shape, so no throughput: name a known model, a Hugging "
                     "Face ID or a config.json")
    return notes
