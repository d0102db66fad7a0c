"""The advisor: the configurations that fit a workload, out of the whole catalog, best first (pure Python, no aws_cdk).

For every instance type and region, :func:`advise` decides whether the workload fits, on how many nodes, how fast
it runs and what it costs, under these rules (each in its own module):

- **Can it run at all** (:mod:`~mlcdk.advice.fitting`): the accelerator preference; Inferentia never trains; no
  FPGA, media or fractional accelerator; the precision must be supported (``data/precision.json``: natively, or as
  weight-only storage where the weights are frozen, integer weights for lora and serving, fp8 for serving); a
  catalog AMI must run the type.
- **Memory, with headroom** (:mod:`~mlcdk.advice.fitting`): the need over all devices is at most
  ``1 - memory_headroom`` of each device's memory, and a node's host memory holds its share of the weights while
  they load (and QLoRA's paged optimizer states). The fewest nodes that do so are computed, never stepped. More than
  one node only for training tasks, only with EFA, at most ``max_nodes`` and the vCPU quota when known.
- **Time** for training tasks (:mod:`~mlcdk.advice.training_time`): compute at the sourced utilization for the
  accelerator and model size, plus FSDP's all-gathers and reduce-scatters over the intra-node link and the network
  where they do not overlap compute; the bound ("compute", "network", "intra-node link") is reported. With
  ``max_days`` the node count grows until the job finishes in time.
- **Throughput** for serving tasks (:mod:`~mlcdk.advice.serving`): prefill bound by peak FLOPs, decode by memory
  bandwidth, at the workload's concurrency (batch-inference: as many sequences as memory holds, up to 256).
- **Prices**: on-demand, or the lowest spot sample of the region's own AZs (Local and Wavelength Zones never count).
  An unknown price excludes the candidate; it is never taken as free.
- **Ranking**: training tasks by the whole job's cost (``rank_by="job"``); serving by the cost per million output
  tokens (``"tokens"``); either by hourly cost (``"hourly"``). Configurations without a sourced figure follow every
  one that has one, by hourly cost: never ranked as if free.
- **Limits**: ``max_price_per_hour_usd``, ``max_cost_usd`` (the whole job), ``max_days``, ``target_tokens_per_second``.

``advise(workload)[0]`` is the top pick; ``advise(workload, explain=True).exclusions`` says why every other
candidate was left out, and ``Advice.suggestion()`` what single change would make something fit.
"""

from __future__ import annotations

import functools

from mlcdk.advice import fitting
from mlcdk.advice.candidates import Context, evaluate, recommendation, sort_key
from mlcdk.advice.estimates import MemoryEstimate, estimate_memory  # noqa: F401 - part of the advisor's API
from mlcdk.advice.fitting import (DOES_NOT_FIT, EXCLUSION_KINDS, FRACTIONAL_GPU, HOST_MEMORY,  # noqa: F401
                                  INFERENCE_ONLY, NO_AMI, NO_EFA, NO_PRICE, NO_SPOT, NOT_OFFERED, NOT_PREFERRED,
                                  OVER_BUDGET, OVER_MAX_COST, OVER_MAX_DAYS, OVER_MAX_NODES, OVER_QUOTA,
                                  PRECISION_UNSUPPORTED, UNDER_TARGET, UNSUPPORTED_ACCELERATOR, nodes_for)
from mlcdk.advice.notes import advice_notes, baseline_for
from mlcdk.advice.results import (MULTI_NODE_SPOT_WARNING, RANK_BY_HOURLY_COST, RANK_BY_JOB_COST,  # noqa: F401
                                  RANK_BY_TOKEN_COST, RANKINGS, Advice, Baseline, Exclusion, Recommendation,
                                  Suggestion, monthly, spot_warnings)
from mlcdk.advice.suggestions import suggest
from mlcdk.presets import catalog as catalog_module
from mlcdk.presets.catalog import HOURS_PER_MONTH, Catalog, InstanceSpec  # noqa: F401
from mlcdk.presets.precision import (AcceleratorThroughput, accelerator_throughputs,  # noqa: F401
                                     load_accelerator_throughputs)
from mlcdk.presets.sizing import REFERENCE_TOKENS_PER_PARAM, SizingRules, Workload  # noqa: F401
from mlcdk.presets.workloads import machine_images

__all__ = ["AcceleratorThroughput", "Advice", "Baseline", "Exclusion", "Recommendation", "Suggestion", "advise",
           "accelerator_throughputs", "fit_problem", "load_accelerator_throughputs", "nodes_for"]


def advise(workload: Workload, *, rules: SizingRules | None = None, explain: bool = False,
           catalog: Catalog | None = None, baseline: str | None = None) -> Advice:
    """Every configuration that fits ``workload``, best first (see the module docstring for the rules).

    ``rules``: default :class:`SizingRules` defaults. ``explain``: also record each excluded candidate and why
    (default off, which is faster). ``catalog``: default the bundled snapshot (or ``$MLCDK_CATALOG``). ``baseline``:
    an instance type to compare each recommendation with for the same job (default: none). Raises
    ConfigurationError for a region or baseline the catalog does not know.
    """
    rules = rules or SizingRules()
    book = catalog or catalog_module.default_catalog()
    for region in workload.regions:
        book.check_region(region, "regions")
    base_spec = None if baseline is None else book.get(baseline, "baseline")
    context = Context.of(workload, rules, book, tuple(machine_images().values()))
    fits, excluded = [], []
    for spec in book:
        evaluated, exclusions = evaluate(spec, context, explain)
        fits.extend(evaluated)
        excluded.extend(exclusions)
    fits.sort(key=sort_key)
    base = None if base_spec is None else baseline_for(base_spec, context)
    ranking = RANKINGS[workload.rank_by]
    recommendations = tuple(recommendation(item, context, rank, fits, base) for rank, item in enumerate(fits))
    tokens = workload.job_tokens
    return Advice(workload, context.memory, ranking, book.provenance.prices_as_of, recommendations, tuple(excluded),
                  context.memory.notes + advice_notes(context, recommendations, base), explain, rules, book, tokens,
                  tokens is not None and workload.training_tokens is None, base,
                  functools.partial(suggest, advise=advise))


def fit_problem(spec: InstanceSpec, workload: Workload, rules: SizingRules | None = None) -> str | None:
    """Why ``workload`` cannot run on ``spec`` by :func:`advise`'s own rules, with the numbers, or None when it fits:
    :func:`~mlcdk.advice.fitting.spec_problem` (accelerator, precision, AMI), then
    :func:`~mlcdk.advice.fitting.fit` on the need :func:`advise` computes (device memory within the headroom, host
    memory for the weights while they load, one node for a serving replica). The construct-side twin of ``advise``:
    InferenceFleet refuses a model this way, so the fleet and the advisor share one rule. Region, price and offering
    are not checked here (the constructs check them themselves)."""
    context = Context.of(workload, rules or SizingRules(), catalog_module.default_catalog(),
                         tuple(machine_images().values()))
    static = fitting.spec_problem(spec, workload, context.images)
    if static is not None:
        return static[1]
    problem = fitting.fit(spec, workload, context.need, context.host_need).problem
    return None if problem is None else problem[1]
