"""InferenceFleet's plan step: every choice and every check, before any resource exists. Pure (no aws_cdk).

:func:`plan_fleet` takes the constructor's checked values (:class:`FleetRequest`) and what the stack and a brought
VPC tell (:class:`~mlcdk.constructs.plan_training.Environment`), resolves the preset, the type, the size, the
purchase (spot or on-demand mix, fallback types), the capacity (ODCR, Capacity Block), the storage and model cache,
the engine and the model's server, and returns one frozen :class:`FleetPlan`. A wrong value raises
ConfigurationError here; soft risks are noted as the plan's ``warnings`` (mlcdk.constructs.plan_warnings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcdk.constructs import capacity_rules, fleet_checks, limits, placement
from mlcdk.constructs.guardrail_options import GuardrailOptions, Thresholds, validate_guardrail_options
from mlcdk.constructs.model_plan import CacheVolume, ModelPlan, plan_model
from mlcdk.constructs.options import GP3_THROUGHPUT_MIBS, CapacityOptions, PurchaseOptions, StorageOptions
from mlcdk.constructs.plan_training import Environment
from mlcdk.constructs.plan_warnings import PlanWarning, warn
from mlcdk.constructs.purchase import FallbackNeeds, note_dropped_fallbacks, resolve_preset, select_fallbacks
from mlcdk.constructs.validation import check
from mlcdk.presets import catalog, images, model_server, workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.identifiers import parse_emails

if TYPE_CHECKING:  # the option groups' modules import aws_cdk (Duration, ACM and Secrets Manager types)
    from mlcdk.constructs.fleet_options import FleetAlarmOptions, LoadBalancerOptions, ScalingOptions
    from mlcdk.constructs.model import ModelOptions

#: The grace of engine="nodes" when scaling.warmup is not given: mlcdk cannot know what the server command loads.
NODES_WARMUP_SECONDS = 600
#: How long before EC2 ends a Capacity Block's instances the fleet scales in, so requests drain first.
FLEET_DRAIN_MINUTES = 10
#: The node's model cache when there is no data volume (on the root volume).
ROOT_CACHE = "/var/lib/mlcdk/models"


@dataclass(frozen=True)
class FleetRequest:
    """InferenceFleet's arguments that decide the plan, as given (see InferenceFleet for each). The option groups
    left out are resolved to their defaults by the constructor. ``warmup_seconds``: scaling.warmup in seconds
    (None when not given or a token); ``model_bucket_given``, ``machine_image_given``: the user brought one."""

    load_balancer: LoadBalancerOptions
    scaling: ScalingOptions
    fleet_alarms: FleetAlarmOptions
    instance_type: str | None = None
    preset: str | workloads.WorkloadPreset | None = None
    engine: str = "ecs"
    model: ModelOptions | None = None
    min_capacity: int | None = None
    max_capacity: int | None = None
    port: int = 8080
    health_check_path: str = "/health"
    purchase: PurchaseOptions | None = None
    capacity: CapacityOptions | None = None
    storage: StorageOptions | None = None
    model_server_command: str | None = None
    alarm_emails: tuple[str, ...] = ()
    guardrails: GuardrailOptions | None = None
    warmup_seconds: float | None = None
    model_bucket_given: bool = False
    machine_image_given: bool = False


@dataclass(frozen=True)
class FleetPlan:
    """Everything InferenceFleet builds from, resolved and checked.

    ``subnet_az_ids``: the AZ IDs of the servers' subnets (None: every private subnet of a VPC that is not
    pinned by AZ ID). ``grace_seconds``: the health-check grace when scaling.warmup is not given. ``model``: the
    model's plan with engine="ecs", else None."""

    request: FleetRequest
    environment: Environment
    preset: workloads.WorkloadPreset | None
    spec: InstanceSpec
    engine: str
    min_capacity: int
    max_capacity: int
    purchase: PurchaseOptions
    capacity: CapacityOptions | None
    storage: StorageOptions
    emails: tuple[str, ...]
    guardrails: GuardrailOptions
    thresholds: Thresholds
    fallbacks: tuple[str, ...]
    cache: CacheVolume
    model: ModelPlan | None
    grace_seconds: float
    ami: workloads.MachineImage | None
    root_device_name: str
    network_az_ids: tuple[str, ...]
    subnet_az_ids: tuple[str, ...] | None
    warnings: tuple[PlanWarning, ...] = ()

    @property
    def ecs(self) -> bool:
        return self.engine == "ecs"

    @property
    def port(self) -> int:
        return self.request.port

    @property
    def scaling(self) -> ScalingOptions:
        return self.request.scaling


def plan_fleet(request: FleetRequest, environment: Environment = Environment()) -> FleetPlan:
    """Resolve and check everything InferenceFleet builds, before any resource exists (ConfigurationError on the
    first wrong value, naming the parameter, the value and what is allowed)."""
    preset, spec, purchase = resolve_preset("InferenceFleet", request.preset, request.instance_type, request.purchase,
                                            inference=True)
    low = request.min_capacity if request.min_capacity is not None else (preset.min_capacity if preset else 1)
    high = request.max_capacity if request.max_capacity is not None else (preset.max_capacity if preset else max(low, 2))
    storage = request.storage or StorageOptions()
    emails = parse_emails(list(request.alarm_emails), "alarm_emails")
    shape = fleet_checks.FleetShape(spec, low, high, request.port, request.health_check_path, request.load_balancer,
                                    request.scaling, purchase, request.fleet_alarms, environment.region)
    fleet_checks.validate(shape)
    fleet_checks.validate_engine(fleet_checks.EngineChoice(
        request.engine, request.model, request.model_server_command, True if request.model_bucket_given else None,
        request.guardrails), shape)
    limits.validate_storage(storage)
    options = request.guardrails or GuardrailOptions()
    thresholds = validate_guardrail_options(options, preset.alarms if preset else None)
    _check_capacity(request, spec, purchase, environment)
    base = FleetPlan(
        request=request, environment=environment, preset=preset, spec=spec, engine=request.engine, min_capacity=low,
        max_capacity=high, purchase=purchase, capacity=request.capacity, storage=storage, emails=emails,
        guardrails=options, thresholds=thresholds, fallbacks=(), cache=cache_volume(storage), model=None,
        grace_seconds=NODES_WARMUP_SECONDS, ami=None, root_device_name="", network_az_ids=(), subnet_az_ids=None)
    return _place(_serve(_choose_fallbacks(base)))


def cache_volume(storage: StorageOptions) -> CacheVolume:
    """The data volume when configured (its size and throughput), else the root volume at gp3's baseline
    throughput (EC2 User Guide, "General Purpose SSD volumes": 125 MiB/s)."""
    if storage.data_volume_size_gib:
        return CacheVolume(storage.data_volume_size_gib, storage.data_volume_throughput_mibs,
                           f"{storage.data_mount_point.rstrip('/')}/mlcdk-models")
    return CacheVolume(storage.root_volume_size_gib, GP3_THROUGHPUT_MIBS[0], ROOT_CACHE)


def _check_capacity(request: FleetRequest, spec: InstanceSpec, purchase: PurchaseOptions,
                    environment: Environment) -> None:
    capacity, scale = request.capacity, request.scaling
    capacity_rules.validate(capacity, capacity_rules.CapacityContext(spec, purchase, environment.region,
                                                                     account=environment.account))
    check([(capacity is not None and capacity.targeted and capacity.availability_zone_id is None,
            "capacity: a fleet with a reservation target needs capacity.availability_zone_id (the reservation's "
            "AZ ID): its servers must launch where the reservation is"),
           (capacity is not None and capacity.targeted and scale.warm_pool,
            "scaling.warm_pool with a capacity reservation: a stopped warm instance gives its reserved slot back "
            "and may not get it again; drop warm_pool")])
    capacity_rules.block_scale_in(capacity, FLEET_DRAIN_MINUTES)


def _choose_fallbacks(plan: FleetPlan) -> FleetPlan:
    """The preset's or the explicit fallback types that fit (purchase.select_fallbacks), and with engine="ecs" also
    run the same server task (one image, the same tensor-parallel devices, enough memory); none for a reservation."""
    spec, purchase = plan.spec, plan.purchase
    fallbacks, dropped = select_fallbacks(spec, purchase, plan.preset, FallbackNeeds(
        same_accelerator_model=False, region=plan.environment.region))
    if plan.ecs and spec.accelerator is not None and fallbacks:
        explicit = purchase.fallback_instance_types is not None
        kept = []
        for name in fallbacks:
            problem = model_server.fallback_problem(spec, catalog.get(name))
            check([(problem is not None and explicit,
                    f"purchase.fallback_instance_types: {name} cannot run {spec.instance_type}'s server task: {problem}")])
            if problem:
                dropped += ((name, problem),)
            else:
                kept.append(name)
        fallbacks = tuple(kept)
    noted = list(plan.warnings)
    note_dropped_fallbacks(noted, spec, dropped)
    fallbacks = capacity_rules.reservation_fallbacks(noted, plan.capacity, spec, fallbacks)
    fleet_checks.validate_warm_pool(plan.scaling, purchase, fallbacks)
    if spec.maximum_network_cards > 1:
        warn(noted, "trainingTypeForServing", instance_type=spec.instance_type,
             network_cards=spec.maximum_network_cards, efa_interfaces=spec.maximum_efa_interfaces)
    return dataclasses.replace(plan, fallbacks=fallbacks, warnings=tuple(noted))


def _serve(plan: FleetPlan) -> FleetPlan:
    """The model's plan (engine="ecs"), the health-check grace, and the AMI: the catalog's for the ECS engine or
    for persistent nodes, unless the user brought one."""
    request, spec, noted = plan.request, plan.spec, list(plan.warnings)
    model = plan_model(request.model, spec, port=request.port, cache=plan.cache) if plan.ecs else None
    if model is not None and not model.image_inspected:
        warn(noted, "serverImageUnchecked", image=request.model.image, instance_type=spec.instance_type,
             needs=images.needs_of(spec))
    grace = NODES_WARMUP_SECONDS
    if model is not None:  # a warmup shorter than the estimate: ECS would stop servers still loading
        estimate, warmup = model.startup, request.warmup_seconds
        grace = estimate.grace_seconds
        if warmup is not None and warmup < estimate.grace_seconds:
            warn(noted, "warmupShorterThanStartup", warmup_seconds=warmup, estimate=estimate.summary())
    if not plan.ecs and not request.model_server_command:
        warn(noted, "noModelServer")
    ami = None if request.machine_image_given else workloads.default_machine_image(
        spec, "batch" if plan.ecs else "nodes")
    root = plan.storage.root_device_name or ("/dev/xvda" if ami is None else ami.root_device_name)
    return dataclasses.replace(plan, model=model, grace_seconds=grace, ami=ami, root_device_name=root,
                               warnings=tuple(noted))


def _place(plan: FleetPlan) -> FleetPlan:
    """The network's AZ IDs and the servers' AZs: the reservation's one AZ, else every AZ that offers the type."""
    env, spec = plan.environment, plan.spec
    placement.check_private_subnets(env.vpc, "model servers", isolated_ok=False)
    reservation_az = capacity_rules.az_for(plan.capacity, None)
    new_network = placement.network_az_ids(spec, env.region, reservation_az) if env.vpc is None else ()
    azs = placement.fleet_azs(env.vpc, new_network, spec, env.region, reservation_az)
    noted = list(plan.warnings)
    capacity_rules.note_block_grace(noted, plan.capacity, capacity_rules.BlockGrace(
        FLEET_DRAIN_MINUTES, plan.engine, scales_in=True))
    if reservation_az is not None:
        warn(noted, "singleAzFleet", az_id=reservation_az)
    return dataclasses.replace(plan, network_az_ids=new_network, subnet_az_ids=azs, warnings=tuple(noted))
