"""One instance type's candidates (one per region) for :func:`mlcdk.advice.advisor.advise`: fit, time or throughput,
price, the limits, the ranking key, and the recommendation it becomes (pure Python, no aws_cdk)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlcdk.advice import fitting, serving, training_time
from mlcdk.advice.estimates import MemoryEstimate, estimate_memory, kv_bytes_per_value, serving_memory, training_flops
from mlcdk.advice.fitting import OVER_BUDGET, OVER_MAX_COST, OVER_MAX_DAYS, UNDER_TARGET, Fit
from mlcdk.advice.results import Exclusion, Recommendation, RANK_BY_JOB_COST, RANKINGS, monthly, spot_warnings
from mlcdk.advice.serving import ServingEstimate
from mlcdk.advice.training_time import TrainingPlan
from mlcdk.presets.catalog import Catalog, InstanceSpec
from mlcdk.presets.precision import device_name, support
from mlcdk.presets.sizing import GIB, MAX_BATCH_SEQUENCES, SizingRules, Workload

#: (kind, reason, nodes needed, hourly cost, Workload field to change, value to change it to)
Verdict = tuple


@dataclass(frozen=True)
class Context:
    """What every candidate of one :func:`advise` call shares."""

    workload: Workload
    rules: SizingRules
    memory: MemoryEstimate
    need: float  #: device bytes
    host_need: float  #: host bytes per job: the weights while loading, plus paged optimizer states
    flops: float | None
    images: tuple
    regions: tuple[str, ...]
    prices_as_of: str

    @classmethod
    def of(cls, workload: Workload, rules: SizingRules, book: Catalog, images: tuple) -> Context:
        memory = estimate_memory(workload, rules)
        return cls(workload, rules, memory, memory.total_bytes, workload.weight_bytes + memory.host_bytes,
                   training_flops(workload, rules), images, workload.regions or book.regions(),
                   book.provenance.prices_as_of)


@dataclass(frozen=True)
class Job:
    """The region-independent part of a candidate: nodes, time or throughput, and any problem."""

    fit: Fit
    nodes: int
    need: float
    plan: TrainingPlan | None = None
    serve: ServingEstimate | None = None
    concurrency: int | None = None
    problem: Verdict | None = None


@dataclass(frozen=True)
class Candidate:
    key: tuple
    spec: InstanceSpec
    region: str
    job: Job
    price: float

    @property
    def hourly(self) -> float:
        return self.job.nodes * self.price

    @property
    def seconds(self) -> float | None:
        return None if self.job.plan is None else self.job.plan.seconds

    @property
    def job_cost(self) -> float | None:
        return None if self.seconds is None else self.hourly * self.seconds / 3600

    @property
    def token_cost(self) -> float | None:
        serve = self.job.serve
        return None if serve is None else serving.cost_per_million_tokens(self.hourly, serve.tokens_per_second)


def evaluate(spec: InstanceSpec, context: Context, explain: bool) -> tuple[list[Candidate], list[Exclusion]]:
    """``spec``'s candidates that fit, one per region, and (with ``explain``) why the others do not."""
    static = fitting.spec_problem(spec, context.workload, context.images)
    if static is not None:
        return [], [Exclusion(spec.instance_type, region, static[0], static[1], parameter=static[2],
                              alternative=static[3]) for region in context.regions] if explain else []
    job = _job(spec, fitting.fit(spec, context.workload, context.need, context.host_need), context)
    fits, excluded = [], []
    for region in context.regions:
        price, verdict = fitting.price_in(spec, region, context.workload.purchase_option == "spot")
        verdict = verdict or job.problem or _priced_problem(job, price, context.workload)
        if verdict is not None:
            if explain:
                excluded.append(Exclusion(spec.instance_type, region, *verdict))
            continue
        fits.append(_candidate(spec, region, job, price, context.workload.rank_by))
    return fits, excluded


def _job(spec: InstanceSpec, fit: Fit, context: Context) -> Job:
    workload = context.workload
    if fit.problem is not None:
        return Job(fit, fit.nodes, context.need, problem=(*fit.problem, fit.nodes or None))
    if workload.trains:
        return _training_job(spec, fit, context)
    estimate = serving.estimate(spec, workload, context.rules, workload.concurrency)
    concurrency = workload.concurrency or (estimate.concurrency if estimate else _batch_concurrency(spec, fit, context))
    need = context.need if workload.concurrency else serving_memory(workload, context.rules, concurrency).total_bytes
    target = workload.target_tokens_per_second
    problem = None
    if target is not None and (estimate is None or estimate.tokens_per_second < target):
        problem = (UNDER_TARGET, f"no sourced serving figure, so it cannot be shown to reach {target:,g} tokens/s"
                   if estimate is None else f"{estimate.tokens_per_second:,.0f} output tokens/s at {concurrency} "
                   f"sequence(s), under target_tokens_per_second ({target:,g})", 1)
    return Job(fit, 1, need, serve=estimate, concurrency=concurrency, problem=problem)


def _training_job(spec: InstanceSpec, fit: Fit, context: Context) -> Job:
    workload, days = context.workload, context.workload.max_days
    if days is None:
        return Job(fit, fit.nodes, context.need, training_time.plan(spec, fit.nodes, context.flops, workload,
                                                                    context.rules))
    limit = fit.limit if spec.efa_supported else 1
    plan, needed = training_time.nodes_for_deadline(spec, (fit.nodes, limit), context.flops, workload, context.rules, days)
    if plan.seconds is not None and plan.seconds <= days * 86400:
        return Job(fit, plan.nodes, context.need, plan)
    if plan.seconds is None:
        return Job(fit, plan.nodes, context.need, plan, problem=(
            OVER_MAX_DAYS, f"no sourced throughput figure, so it cannot be shown to finish in {days:g} days",
            fit.nodes))
    took = f"the job takes {plan.seconds / 86400:,.1f} days on {plan.nodes} node(s)"
    if needed is None:
        reason, parameter, value = f"{took}, and no node count finishes it in {days:g} days", None, None
    elif not spec.efa_supported:
        reason, parameter, value = (f"{took}; {needed} nodes would finish it in {days:g} days, and it has no EFA to "
                                    "join them"), None, None
    elif needed > workload.max_nodes:
        reason, parameter, value = (f"{took} (max_nodes {workload.max_nodes}); {needed} nodes finish it in "
                                    f"{days:g} days"), "max_nodes", needed
    else:
        reason, parameter, value = (f"{took} (the vCPU quota of {workload.vcpu_quota} allows {limit}); {needed} nodes "
                                    f"({needed * spec.vcpus:,} vCPUs) finish it in {days:g} days"), "vcpu_quota", \
            needed * spec.vcpus
    return Job(fit, plan.nodes, context.need, plan, problem=(OVER_MAX_DAYS, reason, needed, None, parameter, value))


def _batch_concurrency(spec: InstanceSpec, fit: Fit, context: Context) -> int:
    """Batch inference: the most sequences (up to MAX_BATCH_SEQUENCES) whose KV cache fits next to the weights."""
    workload, architecture = context.workload, context.workload.architecture
    if architecture is None:
        return 1
    keep = 1 - workload.memory_headroom
    room = keep * fit.devices_per_node * fit.device_bytes / (1 + context.rules.inference_overhead) - workload.weight_bytes
    per_sequence = architecture.kv_cache_bytes(workload.context_tokens, 1, kv_bytes_per_value(workload, context.rules))
    return max(1, min(MAX_BATCH_SEQUENCES, int(room // per_sequence)))


def _priced_problem(job: Job, price: float | None, workload: Workload) -> Verdict | None:
    hourly = job.nodes * (price or 0)
    cap, budget = workload.max_price_per_hour_usd, workload.max_cost_usd
    if cap is not None and hourly > cap:
        return (OVER_BUDGET, f"${hourly:,.2f}/h for {job.nodes} node(s) is over the cap of ${cap:,.2f}/h", job.nodes,
                hourly)
    if budget is None:
        return None
    seconds = None if job.plan is None else job.plan.seconds
    if seconds is None:
        return (OVER_MAX_COST, f"no sourced throughput figure, so its job cannot be shown to cost under ${budget:,.2f}",
                job.nodes, hourly)
    cost = hourly * seconds / 3600
    if cost > budget:
        return (OVER_MAX_COST, f"the job costs ${cost:,.2f} on {job.nodes} node(s), over max_cost_usd "
                               f"(${budget:,.2f})", job.nodes, hourly, "max_cost_usd", math.ceil(cost * 100) / 100)
    return None


def _candidate(spec: InstanceSpec, region: str, job: Job, price: float, rank_by: str) -> Candidate:
    draft = Candidate((), spec, region, job, price)
    tail = (spec.instance_type, region)
    if rank_by == "job" and draft.seconds is not None:
        key = (0, draft.job_cost, draft.seconds, draft.hourly, *tail)
    elif rank_by == "tokens" and draft.token_cost is not None:
        key = (0, draft.token_cost, draft.hourly, *tail)
    elif rank_by in ("job", "tokens"):  # no sourced figure: after every configuration with one, by hourly cost
        key = (1, draft.hourly, job.nodes, *tail)
    else:
        key = (0, draft.hourly, job.nodes, *tail)
    return Candidate(key, spec, region, job, price)


def sort_key(candidate: Candidate) -> tuple:
    return candidate.key


def _standing(rank: int, fits: list[Candidate], candidate: Candidate, ranking: str) -> str:
    best, score = fits[0].key[:2], candidate.key[:2]
    if rank == 0:
        what = {RANK_BY_JOB_COST: "job", RANKINGS["tokens"]: "per million output tokens"}.get(ranking, "per hour")
        return f"cheapest {what if score[0] == 0 else 'per hour'} of {len(fits)} that fit"
    if score[0] == 1 and best[0] == 0:
        return "no sourced throughput figure: ranked after those with one, by hourly cost"
    if best[1] > 0 and score[0] == best[0]:
        return f"{score[1] / best[1]:.2f}x the top pick's {ranking if score[0] == 0 else 'hourly cost'}"
    return "ties the top pick"


def bound_detail(job: Job) -> str:
    """One line on what bounds the job's time or the replica's throughput (empty without a figure)."""
    plan, serve = job.plan, job.serve
    if plan is not None and plan.seconds is not None:
        comm = (f"; FSDP's all-gathers and reduce-scatters take {plan.communication_seconds / 86400:,.2f} days over "
                f"{plan.bus_gb_s:,.1f} GB/s per device ({plan.link})" if plan.communication_seconds else "")
        return (f"{plan.bound}-bound: compute {plan.compute_seconds / 86400:,.2f} days at "
                f"{plan.utilization:.1%} utilization{comm}")
    if serve is not None:
        split = (f"{serve.replicas} replicas of {serve.devices_per_replica} device(s)" if serve.replicas > 1 else
                 f"one replica on {serve.devices_per_replica} device(s)")
        return (f"decode {serve.bound}-bound: {serve.tokens_per_second:,.0f} output tokens/s at {serve.concurrency} "
                f"sequence(s) over {split}, {serve.sequence_tokens_per_second:,.1f} tokens/s per sequence, "
                f"{serve.prefill_seconds:,.2f} s to prefill a batch")
    return ""


def recommendation(candidate: Candidate, context: Context, rank: int, fits: list[Candidate], base) -> Recommendation:
    spec, job, workload = candidate.spec, candidate.job, context.workload
    acc, fit, keep = spec.accelerator, candidate.job.fit, 1 - workload.memory_headroom
    devices = job.nodes * fit.devices_per_node
    available = devices * fit.device_bytes
    level = support(device_name(spec), workload.precision)
    extra = ("; previous generation" if spec.previous_generation else "") + (
        f"; {workload.precision} as weight-only storage" if level == "weight-only" else "")
    plan, serve = job.plan, job.serve
    if plan is not None and plan.bound in (training_time.NETWORK, training_time.INTRA_NODE) and plan.seconds:
        extra += f"; {plan.bound}-bound"
    if plan is not None and job.nodes > fit.nodes:
        extra += f"; {job.nodes} nodes to finish in {workload.max_days:g} days ({fit.nodes} hold it)"
    fit_text = f"fits at {100 * job.need / available:.0f}% of each device (limit {keep:.0%})" + (
        "; host memory for loading the weights sets the nodes" if fit.host_bound else "")
    speedup, cost_ratio = _versus(candidate, base, workload)
    seconds = candidate.seconds
    return Recommendation(
        instance_type=spec.instance_type, accelerator="CPU" if acc is None else f"{acc.count}x {acc.name}",
        nodes=job.nodes, region=candidate.region, az_ids=spec.offered_azs(candidate.region),
        price_kind=workload.purchase_option, price_per_node_usd=candidate.price, hourly_cost_usd=candidate.hourly,
        monthly_cost_usd=monthly(candidate.hourly), price_as_of=context.prices_as_of,
        memory_needed_gib=job.need / GIB, memory_available_gib=available / GIB,
        memory_utilization_pct=100 * job.need / available, efa=spec.efa_supported,
        estimated_days=None if seconds is None else seconds / 86400, estimated_job_cost_usd=candidate.job_cost,
        reason=f"{fit_text}; {_standing(rank, fits, candidate, RANKINGS[workload.rank_by])}{extra}",
        devices=devices, memory_needed_per_device_gib=job.need / devices / GIB,
        memory_per_device_gib=fit.device_bytes / GIB, memory_limit_per_device_gib=keep * fit.device_bytes / GIB,
        host_memory_per_node_gib=fit.host_bytes / GIB, weights_per_node_gib=workload.weight_bytes / job.nodes / GIB,
        precision=workload.precision, precision_support=level,
        throughput_known=seconds is not None or serve is not None, previous_generation=spec.previous_generation,
        speedup_vs_baseline=speedup, cost_vs_baseline=cost_ratio, warnings=spot_warnings(workload, job.nodes),
        nodes_for_memory=fit.nodes, bound=plan.bound if plan and seconds else serve.bound if serve else None,
        bound_detail=bound_detail(job), utilization=plan.utilization if plan and seconds else None,
        compute_days=plan.compute_seconds / 86400 if plan and seconds else None,
        communication_days=plan.communication_seconds / 86400 if plan and seconds else None,
        concurrency=job.concurrency, tokens_per_second=serve.tokens_per_second if serve else None,
        sequence_tokens_per_second=serve.sequence_tokens_per_second if serve else None,
        cost_per_million_tokens_usd=candidate.token_cost)


def _versus(candidate: Candidate, base, workload: Workload) -> tuple[float | None, float | None]:
    """(speed-up, cost ratio) against the baseline in the same region, where both have figures."""
    if base is None:
        return None, None
    base_price = base.prices.get(candidate.region)
    seconds, job_cost = candidate.seconds, candidate.job_cost
    if base.job_seconds is not None and seconds is not None:
        cost = job_cost / (base_price * base.job_seconds / 3600) if base_price is not None else None
        return base.job_seconds / seconds, cost
    if not workload.trains and base_price is not None:
        return None, candidate.hourly / base_price
    return None, None
