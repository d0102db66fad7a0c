"""The preset, the instance type and how nodes are bought: the rules TrainingCluster and InferenceFleet share.

Pure (no aws_cdk): the plan steps (mlcdk.constructs.plan_training, plan_fleet) call these before any resource
exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcdk.constructs.options import PurchaseOptions
from mlcdk.constructs.plan_warnings import PlanWarning, warn
from mlcdk.constructs.validation import check, concrete
from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog, precision, workloads
from mlcdk.presets.catalog import InstanceSpec


def resolve_preset(kind: str, preset, instance_type: str | None, purchase: PurchaseOptions | None, *,
                   inference: bool) -> tuple[workloads.WorkloadPreset | None, InstanceSpec, PurchaseOptions]:
    """The preset (by name or object), the instance spec (explicit type over the preset's), and the purchase
    options (explicit over the preset's, else on-demand), with the checks both constructs share."""
    if isinstance(preset, str):
        preset = workloads.get(preset)
    check([(instance_type is None and preset is None, f"{kind} needs instance_type or preset")])
    task_problem = workloads.preset_task_problem(preset, inference=inference, needed_by=kind) if preset else None
    check([(task_problem is not None, f"preset ({preset.name if preset else ''!r}) {task_problem}")])
    spec = catalog.get(instance_type or preset.instance_type)
    acc = spec.accelerator
    cannot_train = precision.training_problem(acc.name) if acc is not None and not inference else None
    check([(acc is not None and acc.kind == "gpu" and acc.manufacturer != "NVIDIA",
            f"instance_type: {kind} runs NVIDIA GPUs, AWS Neuron devices or CPUs; {spec.instance_type} has "
            f"{acc.manufacturer if acc else ''} {acc.name if acc else ''} accelerators, for which mlcdk has no AMI, "
            "driver metrics or job container"),
           (cannot_train is not None,
            f"instance_type: {spec.instance_type} cannot train: {cannot_train}. {kind} needs a type that trains "
            "(Trainium or an NVIDIA GPU); serve models on Inferentia with InferenceFleet")])
    purchase = purchase or PurchaseOptions(option=preset.purchase_option if preset else "on-demand",
                                           on_demand_base_capacity=preset.on_demand_base_capacity if preset else 0)
    validate_purchase(purchase, spec)
    return preset, spec, purchase


def validate_purchase(purchase: PurchaseOptions, spec: InstanceSpec) -> None:
    """The purchase options both constructs share: the option, spot capacity, and the on-demand mix."""
    problem = workloads.purchase_problem(purchase.option, spec)
    base, share = purchase.on_demand_base_capacity, purchase.on_demand_percentage_above_base
    check([
        (problem is not None, f"purchase.option ({purchase.option!r}) {problem}" if problem and problem.startswith("must")
         else f"purchase.option ({purchase.option!r}): {problem}"),
        (concrete(share) and not 0 <= share <= 100,
         f"purchase.on_demand_percentage_above_base ({share}) must be 0-100"),
        (concrete(base) and base < 0, f"purchase.on_demand_base_capacity ({base}) must be at least 0"),
    ])


@dataclass(frozen=True)
class FallbackNeeds:
    """What a fallback type must match: the accelerator model (training) or only its kind (serving), the EFA
    interfaces the launch template attaches (``efa``), and where the nodes go (``region``, its AZ ``az_id``)."""

    same_accelerator_model: bool
    efa: bool = False
    region: str | None = None
    az_id: str | None = None


def select_fallbacks(spec: InstanceSpec, purchase: PurchaseOptions, preset, needs: FallbackNeeds,
                     ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The fallback types a group may launch beside ``spec``, and the preset's that were dropped, with why.

    Explicit ``purchase.fallback_instance_types`` must all fit (ConfigurationError naming the first that does
    not); the preset's are kept where they fit. A fallback fits when it can replace the type
    (:func:`~mlcdk.presets.workloads.fallback_problem`), has the EFA interfaces the launch template attaches
    (``efa``), runs on spot where the group buys spot, and is offered where the nodes go: in ``region`` and
    its AZ ``az_id`` when known; for an env-agnostic stack (``region`` None), in every region that offers
    ``spec``. One home for TrainingCluster and InferenceFleet.
    """
    explicit = purchase.fallback_instance_types is not None
    candidates = purchase.fallback_instance_types if explicit else (preset.fallback_instance_types if preset else ())
    kept, dropped = [], []
    for name in candidates:
        fallback = catalog.get(name, parameter="purchase.fallback_instance_types")
        if fallback.instance_type == spec.instance_type:
            continue
        problem = fallback_problem(spec, fallback, purchase, needs)
        if problem and explicit:
            raise ConfigurationError(
                f"purchase.fallback_instance_types: {name} cannot replace {spec.instance_type}: {problem}")
        if problem:
            dropped.append((fallback.instance_type, problem))
        else:
            kept.append(fallback.instance_type)
    return tuple(kept), tuple(dropped)


def fallback_problem(spec: InstanceSpec, fallback: InstanceSpec, purchase: PurchaseOptions,
                     needs: FallbackNeeds) -> str | None:
    """Why ``fallback`` cannot stand in for ``spec`` in this group, or None (see :func:`select_fallbacks`)."""
    problem = workloads.fallback_problem(spec, fallback, same_accelerator_model=needs.same_accelerator_model)
    region, az_id = needs.region, needs.az_id
    if problem is None and needs.efa and fallback.maximum_efa_interfaces < spec.maximum_efa_interfaces:
        problem = (f"it supports {fallback.maximum_efa_interfaces} EFA interfaces; the launch template "
                   f"attaches {spec.maximum_efa_interfaces}")
    if problem is None and purchase.uses_spot and not fallback.spot_supported:
        problem = "it cannot run on spot"
    if problem is None and region is not None and not fallback.offered_in(region):
        problem = f"it is not offered in {region}"
    if problem is None and region is not None and az_id and az_id not in fallback.offered_azs(region):
        problem = f"it is not offered in the cluster's AZ {az_id}"
    if problem is None and region is None:
        missing = [r for r in spec.regions if not fallback.offered_in(r)]
        if missing:
            problem = (f"the stack is env-agnostic and it is not offered in {', '.join(missing)}, where "
                       f"{spec.instance_type} is")
    return problem


def note_dropped_fallbacks(noted: list[PlanWarning], spec: InstanceSpec, dropped: tuple[tuple[str, str], ...]) -> None:
    """Name the preset's fallback types that :func:`select_fallbacks` dropped, each with why (one wording for
    TrainingCluster and InferenceFleet: ``mlcdk:presetFallbacksDropped``)."""
    if dropped:
        warn(noted, "presetFallbacksDropped", instance_type=spec.instance_type,
             dropped="; ".join(f"{name} ({why})" for name, why in dropped))
