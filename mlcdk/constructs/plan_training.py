"""TrainingCluster's plan step: every choice and every check, before any resource exists. Pure (no aws_cdk).

:func:`plan_training` takes the constructor's checked values (:class:`TrainingRequest`, types already checked by
mlcdk.params) and what the stack and a brought VPC tell (:class:`Environment`), resolves the preset, the type,
the purchase (spot or on-demand mix, fallback types), the capacity (ODCR, Capacity Block), the storage (FSx, the
data volume), the engine and its job image, and returns one frozen :class:`TrainingPlan`. A wrong value raises
ConfigurationError here. Soft risks are noted as the plan's ``warnings`` (mlcdk.constructs.plan_warnings), which
the construct raises on itself.

Precedence (STYLE.md 5): security invariants, then explicit arguments, then the preset, then defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlcdk.constructs import capacity_rules, limits, placement
from mlcdk.constructs.guardrail_options import GuardrailOptions, Thresholds, validate_guardrail_options
from mlcdk.constructs.options import (
    JOB_ATTEMPTS, JOB_TIMEOUT_HOURS, LOG_RETENTION_DAYS,
    CapacityOptions, JobOptions, PurchaseOptions, ScaleSchedule, SharedStorageOptions, StorageOptions,
)
from mlcdk.constructs.placement import VpcFacts
from mlcdk.constructs.plan_warnings import PlanWarning, warn
from mlcdk.constructs.purchase import FallbackNeeds, note_dropped_fallbacks, resolve_preset, select_fallbacks
from mlcdk.constructs.shared_storage_rules import validate as validate_shared_storage
from mlcdk.constructs.validation import check, concrete
from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog, images, workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.secrets import job_secret_problem
from mlcdk.presets.counts import MAX_NODES
from mlcdk.presets.identifiers import parse_emails

#: Where an env-agnostic stack's cost figures come from is mlcdk.constructs.guardrail_options.REFERENCE_REGION.
DEFAULT_GRACE = limits.GraceInput(600_000, "10 minutes")


@dataclass(frozen=True)
class Environment:
    """What the plan knows of where the cluster goes: the stack's concrete region and account (None for tokens)
    and the VPC the user brought (None: the construct builds a PrivateNetwork)."""

    region: str | None = None
    account: str | None = None
    vpc: VpcFacts | None = None


@dataclass(frozen=True)
class TrainingRequest:
    """TrainingCluster's arguments that decide the plan, as given (see TrainingCluster for each). ``grace``: the
    checkpoint grace period read from its cdk.Duration; ``machine_image_given``: the user brought an AMI."""

    instance_type: str | None = None
    preset: str | workloads.WorkloadPreset | None = None
    engine: str = "batch"
    job: JobOptions | None = None
    nodes: int | None = None
    availability_zone_id: str | None = None
    efa: bool | None = None
    placement_group: bool | None = None
    purchase: PurchaseOptions | None = None
    capacity: CapacityOptions | None = None
    storage: StorageOptions | None = None
    shared_storage: SharedStorageOptions | None = None
    alarm_emails: tuple[str, ...] = ()
    schedule: ScaleSchedule | None = None
    grace: limits.GraceInput = DEFAULT_GRACE
    guardrails: GuardrailOptions | None = None
    max_hourly_cost_usd: float | None = None
    machine_image_given: bool = False


@dataclass(frozen=True)
class TrainingPlan:
    """Everything TrainingCluster builds from, resolved and checked.

    ``az_id``: the nodes' one AZ ID (None when the VPC does not pin its subnets by AZ ID: its first private
    subnet). ``network_az_ids``: the AZ IDs of the PrivateNetwork the construct builds (() when a VPC was
    brought). ``ami``: the catalog AMI (None when the user brought one). ``job``: with its image resolved
    (None on engine="nodes")."""

    request: TrainingRequest
    environment: Environment
    preset: workloads.WorkloadPreset | None
    spec: InstanceSpec
    engine: str
    nodes: int
    efa: bool
    cluster_placement: bool
    purchase: PurchaseOptions
    capacity: CapacityOptions | None
    storage: StorageOptions
    shared_storage: SharedStorageOptions | None
    job: JobOptions | None
    schedule: ScaleSchedule | None
    grace_seconds: int | None
    guardrails: GuardrailOptions
    thresholds: Thresholds
    emails: tuple[str, ...]
    fallbacks: tuple[str, ...]
    az_id: str | None
    network_az_ids: tuple[str, ...]
    ami: workloads.MachineImage | None
    root_device_name: str
    warnings: tuple[PlanWarning, ...] = ()

    @property
    def region(self) -> str | None:
        return self.environment.region

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1

    @property
    def batch(self) -> bool:
        return self.engine == "batch"

    @property
    def neuron(self) -> bool:
        return self.spec.accelerator is not None and self.spec.accelerator.kind == "neuron"

    @property
    def instance_types(self) -> tuple[str, ...]:
        """The primary type, then the fallbacks, in priority order."""
        return (self.spec.instance_type, *self.fallbacks)

    @property
    def data_mount_point(self) -> str | None:
        return self.storage.data_mount_point if self.storage.data_volume_size_gib else None


def plan_training(request: TrainingRequest, environment: Environment = Environment()) -> TrainingPlan:
    """Resolve and check everything TrainingCluster builds, before any resource exists (ConfigurationError on the
    first wrong value, naming the parameter, the value and what is allowed)."""
    preset, spec, purchase = resolve_preset("TrainingCluster", request.preset, request.instance_type,
                                            request.purchase, inference=False)
    nodes = request.nodes if request.nodes is not None else (preset.nodes if preset else 1)
    storage = request.storage or StorageOptions()
    emails = parse_emails(list(request.alarm_emails), "alarm_emails")
    options = request.guardrails or GuardrailOptions()
    if request.max_hourly_cost_usd is not None:
        options = dataclasses.replace(options, max_hourly_cost_usd=request.max_hourly_cost_usd)
    _check_size_and_type(spec, nodes, request, environment.region)
    limits.validate_storage(storage)
    _check_engine(request, nodes, purchase)
    grace_seconds = limits.grace_period_seconds(request.grace, request.engine)
    if request.schedule is not None:
        limits.check_schedule(request.schedule)
    thresholds = validate_guardrail_options(options, preset.alarms if preset else None)
    az_id = _check_storage_and_capacity(request, spec, purchase, environment)
    base = TrainingPlan(
        request=request, environment=environment, preset=preset, spec=spec, engine=request.engine, nodes=nodes,
        efa=request.efa if request.efa is not None else (nodes > 1 and spec.efa_supported),
        cluster_placement=capacity_rules.placement_default(request.capacity, request.placement_group, nodes > 1, spec),
        purchase=purchase, capacity=request.capacity, storage=storage, shared_storage=request.shared_storage,
        job=None, schedule=request.schedule, grace_seconds=grace_seconds, guardrails=options, thresholds=thresholds,
        emails=emails, fallbacks=(), az_id=az_id, network_az_ids=(), ami=None, root_device_name="")
    return _place(_choose_fallbacks(_machine_image(base)))


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

def _check_size_and_type(spec: InstanceSpec, nodes, request: TrainingRequest, region: str | None) -> None:
    """The node count, the offering in the region (and AZ), EFA and the placement group."""
    name = spec.instance_type
    offering = workloads.offering_problem(spec, region, request.availability_zone_id)
    offering_parameter = "availability_zone_id" if region and spec.offered_in(region) else "instance_type"
    token = isinstance(nodes, float) and not concrete(nodes)  # mlcdk.params let only a token float through
    check([
        (token,
         "nodes: a deploy-time token cannot size a training cluster: the node count decides at synth time whether "
         "EFA and the cluster placement group are on, the Batch job definition's size, and the cost alarm and "
         "budget; give a whole number (e.g. from context: -c nodes=4)"),
        (not 1 <= nodes <= MAX_NODES,
         f"nodes ({nodes!r}) must be a whole number from 1 to {MAX_NODES}"),
        (offering is not None, f"{offering_parameter}: {offering}"),
        (request.efa is True and not spec.efa_supported, f"efa: {name} does not support EFA"),
        (request.placement_group is True and not spec.supports_placement("cluster"),
         f"placement_group: {name} does not support cluster placement groups"),
    ])


def _check_engine(request: TrainingRequest, nodes: int, purchase: PurchaseOptions) -> None:
    """The engine and what it can honour: a setting one engine cannot honour is refused, never ignored."""
    engine = request.engine
    check([(engine not in workloads.ENGINES, f"engine ({engine!r}) must be one of {', '.join(workloads.ENGINES)}")])
    if engine == "nodes":
        check([(request.job is not None, "job: JobOptions configure the Batch job definition; engine='nodes' has "
                                         "none (use engine='batch', or drop job=)")])
        return
    purchase_problem = workloads.engine_purchase_problem(engine, purchase.option, nodes)
    guardrails = request.guardrails
    check([
        *_job_rows(request.job or JobOptions()),
        (purchase_problem is not None, f"purchase ({purchase.option!r}) {purchase_problem}"),
        (request.schedule is not None,
         "schedule with engine='batch': Batch already runs no node while no job runs; stop a running job with "
         "`mlcdk cancel`, or use engine='nodes' for scheduled persistent nodes"),
        (guardrails is not None and guardrails.scale_to_zero_when_idle,
         "guardrails.scale_to_zero_when_idle with engine='batch': Batch scales to zero when the queue is empty; "
         "an idle job keeps its nodes until it ends or is cancelled (the idle alarm notifies you)"),
    ])


def _job_rows(job: JobOptions) -> list[tuple[bool, str]]:
    """Batch's ranges for JobOptions (their types were checked by mlcdk.params)."""
    timeout = job.timeout_hours
    image_problem = workloads.image_reference_problem(job.image) if job.image is not None else None
    return [
        (image_problem is not None, f"job.image ({job.image!r}) {image_problem}"),
        (not JOB_TIMEOUT_HOURS[0] <= timeout <= JOB_TIMEOUT_HOURS[1],
         f"job.timeout_hours ({timeout!r}) must be a number of hours from 1/60 (Batch's 60 s minimum) to "
         f"{JOB_TIMEOUT_HOURS[1]:g}"),
        (not JOB_ATTEMPTS[0] <= job.retry_attempts <= JOB_ATTEMPTS[1],
         f"job.retry_attempts ({job.retry_attempts!r}) must be a whole number from {JOB_ATTEMPTS[0]} to "
         f"{JOB_ATTEMPTS[1]} (Batch's limit)"),
        (job.log_retention_days not in LOG_RETENTION_DAYS,
         f"job.log_retention_days ({job.log_retention_days!r}) must be one of CloudWatch Logs' periods: "
         f"{', '.join(map(str, LOG_RETENTION_DAYS))}"),
        *((True, f"job.secrets: {problem}") for name, arn in (job.secrets or {}).items()
          if (problem := job_secret_problem(name, arn)) is not None),
    ]


def _check_storage_and_capacity(request: TrainingRequest, spec: InstanceSpec, purchase: PurchaseOptions,
                                environment: Environment) -> str | None:
    """FSx, the node paths, the held capacity and the AZ it pins. Returns the AZ ID the nodes must use."""
    vpc, region = environment.vpc, environment.region
    if request.shared_storage is not None:
        validate_shared_storage(request.shared_storage, cluster_vpc_id=vpc.vpc_id if vpc is not None else None,
                                creates_vpc=vpc is None)
    limits.check_node_paths(request.storage or StorageOptions(), request.shared_storage)
    capacity, az_id = request.capacity, request.availability_zone_id
    capacity_rules.validate(capacity, capacity_rules.CapacityContext(
        spec, purchase, region, az_id=az_id, placement_group=request.placement_group, engine=request.engine,
        account=environment.account))
    if request.grace.milliseconds is not None:  # a Capacity Block's end: the scale-in time, before anything exists
        capacity_rules.block_scale_in(capacity, request.grace.milliseconds / 60_000)
    pinned_by = ("capacity.availability_zone_id" if capacity is not None and capacity.availability_zone_id
                 else "availability_zone_id")
    az_id = capacity_rules.az_for(capacity, az_id)
    placement.check_pinned_vpc(vpc, region, az_id, pinned_by)
    placement.check_private_subnets(vpc, "cluster nodes", isolated_ok=True)
    return az_id


# --------------------------------------------------------------------------------------------
# Choices
# --------------------------------------------------------------------------------------------

def _machine_image(plan: TrainingPlan) -> TrainingPlan:
    """The catalog's AMI for the type on the engine, unless the user brought one, and the root device."""
    given = plan.request.machine_image_given
    ami = None if given else workloads.default_machine_image(plan.spec, plan.engine)
    root = plan.storage.root_device_name or ("/dev/xvda" if ami is None else ami.root_device_name)
    return dataclasses.replace(plan, ami=ami, root_device_name=root)


def _choose_fallbacks(plan: TrainingPlan) -> TrainingPlan:
    """The fallback types that fit (purchase.select_fallbacks), none for a reservation or a multi-node Batch job,
    and the job's image checked against every type the compute environment may launch."""
    spec, env, noted = plan.spec, plan.environment, list(plan.warnings)
    intended = placement.intended_az(env.vpc, spec, env.region, plan.az_id)
    fallbacks, dropped = select_fallbacks(spec, plan.purchase, plan.preset, FallbackNeeds(
        same_accelerator_model=True, efa=plan.efa, region=env.region, az_id=intended))
    note_dropped_fallbacks(noted, spec, dropped)
    fallbacks = capacity_rules.reservation_fallbacks(noted, plan.capacity, spec, fallbacks)
    if plan.batch and plan.multi_node and fallbacks:
        # A multi-node job definition names one instance type for every node: fallbacks cannot be used.
        if plan.purchase.fallback_instance_types is not None:
            raise ConfigurationError(
                f"purchase.fallback_instance_types ({', '.join(fallbacks)}): engine='batch' runs a multi-node job "
                f"on one instance type ({spec.instance_type}); drop the fallbacks, or use engine='nodes'")
        warn(noted, "batchFallbacksUnused", fallbacks=", ".join(fallbacks), instance_type=spec.instance_type)
        fallbacks = ()
    job = _job_image(noted, plan.request.job or JobOptions(), spec, fallbacks) if plan.batch else None
    return dataclasses.replace(plan, fallbacks=fallbacks, job=job, warnings=tuple(noted))


def _job_image(noted: list[PlanWarning], job: JobOptions, spec: InstanceSpec, fallbacks: tuple[str, ...]) -> JobOptions:
    """The job's image, checked against every type the compute environment may launch: the default DLC that
    drives them (mlcdk.presets.images), or the given one, refused when its DLC-style tag says it cannot
    drive them, and warned about when nothing in its reference tells."""
    specs = [spec, *(catalog.get(name) for name in fallbacks)]
    if job.image is None:
        return dataclasses.replace(job, image=images.default_image(specs).uri)
    inspected, problem = images.given_image_problem(job.image, specs)
    if problem is not None:
        raise ConfigurationError(f"job.image ({job.image!r}) cannot drive {problem}; leave job.image out for the "
                                 "default image, or pass one built for it (`mlcdk images list`)")
    if not inspected:
        warn(noted, "jobImageUnchecked", image=job.image, instance_type=spec.instance_type, needs=images.needs_of(spec))
    return job


def _place(plan: TrainingPlan) -> TrainingPlan:
    """The network's AZ IDs and the nodes' one AZ (a subnet in an AZ that offers the type), then the warnings
    about placement, EFA and a Capacity Block's end."""
    env, spec, noted = plan.environment, plan.spec, list(plan.warnings)
    new_network = placement.network_az_ids(spec, env.region, plan.az_id) if env.vpc is None else ()
    ids = placement.pinned_ids(env.vpc, new_network)
    az_id = placement.cluster_az(ids, spec, env.region, plan.az_id)
    if not ids and env.region is not None:
        warn(noted, "unverifiedAz", instance_type=spec.instance_type, offered_azs=", ".join(spec.offered_azs(env.region)))
    _note_placement(noted, plan)
    grace = plan.request.grace.milliseconds
    if grace is not None:
        capacity_rules.note_block_grace(noted, plan.capacity, capacity_rules.BlockGrace(
            grace / 60_000, plan.engine, scales_in=not plan.batch))
    return dataclasses.replace(plan, az_id=az_id, network_az_ids=new_network, warnings=tuple(noted))


def _note_placement(noted: list[PlanWarning], plan: TrainingPlan) -> None:
    """A multi-node cluster without a placement group, EFA off, or no EFA; a placement group with a reservation."""
    spec, nodes, capacity = plan.spec, plan.nodes, plan.capacity
    if plan.multi_node and plan.efa and not plan.cluster_placement and not (capacity is not None and capacity.capacity_block):
        why = ("a reservation made outside it cannot serve nodes placed in a new one (eksctl #7949), so it "
               "stays off; ask for a reservation in a cluster placement group if latency matters"
               if capacity is not None else
               "inter-node latency may be higher. Keep it off only for capacity reservations or Capacity Blocks")
        warn(noted, "placementGroupOff", nodes=nodes, instance_type=spec.instance_type, reason=why)
    if capacity is not None and plan.cluster_placement:
        warn(noted, "placementWithReservation")
    if plan.multi_node and plan.efa is False and spec.efa_supported:
        warn(noted, "efaOff", nodes=nodes, instance_type=spec.instance_type, efa_interfaces=spec.maximum_efa_interfaces)
    if plan.multi_node and not spec.efa_supported:
        warn(noted, "noEfa", instance_type=spec.instance_type, nodes=nodes,
             bandwidth=spec.network_performance or "its network bandwidth")
