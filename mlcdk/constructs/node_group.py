"""NodeGroup: the launch template and Auto Scaling group shared by TrainingCluster and InferenceFleet."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs.efa import efa_interfaces
from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.options import PurchaseOptions, StorageOptions
from mlcdk.errors import ConfigurationError
from mlcdk.constructs.validation import check, concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.presets import catalog, metrics, precision, workloads
from mlcdk.presets.catalog import InstanceSpec

DATA_DEVICE = "/dev/sdf"


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


def select_fallbacks(spec: InstanceSpec, purchase: PurchaseOptions, preset, *, same_accelerator_model: bool,
                     efa: bool = False, region: str | None = None, az_id: str | None = None,
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
        problem = workloads.fallback_problem(spec, fallback, same_accelerator_model=same_accelerator_model)
        if problem is None and efa and fallback.maximum_efa_interfaces < spec.maximum_efa_interfaces:
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
        if problem and explicit:
            raise ConfigurationError(
                f"purchase.fallback_instance_types: {name} cannot replace {spec.instance_type}: {problem}")
        if problem:
            dropped.append((fallback.instance_type, problem))
        else:
            kept.append(fallback.instance_type)
    return tuple(kept), tuple(dropped)



def warn_dropped_fallbacks(scope: Construct, spec: InstanceSpec, dropped: Sequence[tuple[str, str]]) -> None:
    """Name the preset's fallback types that :func:`select_fallbacks` dropped, each with why (one wording for
    TrainingCluster and InferenceFleet: ``mlcdk:presetFallbacksDropped``)."""
    if dropped:
        warn(scope, "presetFallbacksDropped", instance_type=spec.instance_type,
             dropped="; ".join(f"{name} ({why})" for name, why in dropped))


def resolve_machine_image(spec: InstanceSpec, machine_image: ec2.IMachineImage | None,
                          root_device_name: str | None, engine: str = "nodes") -> tuple[ec2.IMachineImage, str]:
    """The AMI and its root device: the given image, or the catalog's AMI for ``spec`` on ``engine`` resolved
    at deploy time from its SSM public parameter (ConfigurationError when no catalog AMI runs the type)."""
    if machine_image is not None:
        return machine_image, root_device_name or "/dev/xvda"
    image = workloads.default_machine_image(spec, engine)
    return ec2.MachineImage.from_ssm_parameter(image.parameter), root_device_name or image.root_device_name


def node_launch_template(scope: Construct, *, spec: InstanceSpec, role: iam.IRole | None, user_data: ec2.UserData,
                         security_group: ec2.ISecurityGroup, key: kms.IKey, machine_image: ec2.IMachineImage,
                         storage: StorageOptions, root_device_name: str, efa: bool, cluster_placement: bool,
                         placement_in_template: bool = True,
                         imds_hop_limit: int = 2) -> tuple[ec2.LaunchTemplate, ec2.CfnPlacementGroup | None]:
    """The launch template every engine runs (IMDSv2, gp3 volumes encrypted with ``key``, every EFA interface
    when ``efa``) and, when ``cluster_placement``, a cluster placement group ("LaunchTemplate" and
    "PlacementGroup" under ``scope``). The template references the group unless ``placement_in_template`` is
    off (AWS Batch takes the group on the compute environment instead). ``role`` None: no instance profile
    (Batch ignores the template's and uses the compute environment's instance role). ``imds_hop_limit``: 1 keeps
    IMDSv2 tokens from crossing into bridge-networked containers (EC2 user guide, "Instance metadata options":
    the PUT response hop limit), 2 lets containers on the node reach IMDS."""
    volumes = [ec2.BlockDevice(device_name=root_device_name, volume=ec2.BlockDeviceVolume.ebs(
        storage.root_volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True, kms_key=key,
        delete_on_termination=True))]
    if storage.data_volume_size_gib:
        volumes.append(ec2.BlockDevice(device_name=DATA_DEVICE, volume=ec2.BlockDeviceVolume.ebs(
            storage.data_volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True, kms_key=key,
            iops=storage.data_volume_iops, throughput=storage.data_volume_throughput_mibs,
            delete_on_termination=True)))
    launch_template = ec2.LaunchTemplate(
        scope, "LaunchTemplate",
        instance_type=ec2.InstanceType(spec.instance_type),
        machine_image=machine_image,
        role=role,
        user_data=user_data,
        security_group=security_group,
        require_imdsv2=True,
        http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
        http_put_response_hop_limit=imds_hop_limit,
        instance_metadata_tags=True,  # a node reads its group name (aws:autoscaling:groupName) from IMDS
        block_devices=volumes,
    )
    template = launch_template.node.default_child
    placement_group: ec2.CfnPlacementGroup | None = None
    if cluster_placement:
        placement_group = ec2.CfnPlacementGroup(scope, "PlacementGroup", strategy="cluster")
        if placement_in_template:
            # Ref is the group's name; GetAtt on placement groups is not supported everywhere.
            template.add_property_override("LaunchTemplateData.Placement.GroupName", placement_group.ref)
    if efa:
        group_id = security_group.security_group_id  # one jsii round trip, not one per interface
        interfaces = [{**nic, "Groups": [group_id]} for nic in efa_interfaces(spec)]
        template.add_property_override("LaunchTemplateData.NetworkInterfaces", interfaces)
        # EC2 rejects SecurityGroupIds beside NetworkInterfaces: the group is on every interface instead.
        template.add_property_deletion_override("LaunchTemplateData.SecurityGroupIds")
    return launch_template, placement_group


class NodeGroup(Construct):
    """A launch template (IMDSv2, encrypted gp3 volumes, optional EFA interfaces and placement group) and
    the Auto Scaling group that runs it (on-demand, spot, or a mix with fallback types).

    Child IDs are fixed ("LaunchTemplate", "Nodes", "PlacementGroup"), whatever the instance type.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: InstanceSpec,
        min_capacity: int,
        max_capacity: int,
        desired_capacity: int | None,
        update_policy: autoscaling.UpdatePolicy | None = None,
        health_checks: autoscaling.HealthChecks | None = None,
        instance_warmup: cdk.Duration | None = None,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        role: iam.IRole,
        key: kms.IKey,
        machine_image: ec2.IMachineImage,
        user_data: ec2.UserData,
        storage: StorageOptions,
        root_device_name: str,
        efa: bool,
        cluster_placement: bool,
        purchase: PurchaseOptions,
        fallback_instance_types: Sequence[str],
        notification_topic: sns.ITopic,
        imds_hop_limit: int = 2,
    ) -> None:
        super().__init__(scope, construct_id)
        self.launch_template, self.placement_group = node_launch_template(
            self, spec=spec, role=role, user_data=user_data, security_group=security_group, key=key,
            machine_image=machine_image, storage=storage, root_device_name=root_device_name, efa=efa,
            cluster_placement=cluster_placement, imds_hop_limit=imds_hop_limit)

        types = [spec.instance_type, *fallback_instance_types]
        mixed = purchase.uses_spot or len(types) > 1
        common = dict(
            vpc=vpc, vpc_subnets=subnets, min_capacity=min_capacity, max_capacity=max_capacity,
            desired_capacity=desired_capacity, group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=notification_topic)],
            capacity_rebalance=purchase.uses_spot or None,
            update_policy=update_policy, health_checks=health_checks, default_instance_warmup=instance_warmup,
        )
        if mixed:
            on_demand_base, on_demand_above = {
                "on-demand": (0, 100),
                "spot": (0, 0),
                "mixed": (purchase.on_demand_base_capacity, purchase.on_demand_percentage_above_base),
            }[purchase.option]
            policy = autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=on_demand_base,
                    on_demand_percentage_above_base_capacity=on_demand_above,
                    on_demand_allocation_strategy=autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                ),
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t)) for t in types],
            )
            self.auto_scaling_group = autoscaling.AutoScalingGroup(self, "Nodes", mixed_instances_policy=policy, **common)
        else:
            self.auto_scaling_group = autoscaling.AutoScalingGroup(self, "Nodes", launch_template=self.launch_template,
                                                                   **common)
        acknowledge(self.auto_scaling_group, "AwsSolutions-EC26", "EC26 cannot read volumes through a launch "
                    "template; every volume is gp3 and encrypted with the group's key (asserted in mlcdk's tests)")
        if mixed:
            acknowledge(self.auto_scaling_group, "NIST.800.53.R5-EC2IMDSv2Enabled", "the rule reads only a group's "
                        "top-level launch template, not one inside a MixedInstancesPolicy (cdk-nag 3.0.2, "
                        "lib/rules/ec2/EC2IMDSv2Enabled.js); this group's template requires IMDSv2 tokens "
                        "(asserted in mlcdk's tests)")
        if desired_capacity is not None:
            cdk.Annotations.of(self.auto_scaling_group).acknowledge_warning(
                "@aws-cdk/aws-autoscaling:desiredCapacitySet",
                "the configured size is the group's intended size: a deploy sets it back on purpose")
        self.instance_types = tuple(types)


class NodeGroupMixin:
    """IConnectable, IGrantable and metric methods for a construct that owns a NodeGroup.

    The construct sets ``spec``, ``role``, ``auto_scaling_group``, ``guardrails`` and ``_connections``.
    """

    @property
    def connections(self) -> ec2.Connections:
        """Connections of the node security group (for ``allow_from``/``allow_to``)."""
        return self._connections

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """The node role: grant it access to data and models."""
        return self.role.grant_principal

    def _metric_dimensions(self) -> dict[str, str]:
        """The dimensions that address the whole group in namespace CWAgent."""
        return {metrics.ASG_DIMENSION: self.auto_scaling_group.auto_scaling_group_name}

    def _names(self) -> metrics.AcceleratorMetricNames:
        names = metrics.metric_names(self.spec.accelerator.kind if self.spec.accelerator else None)
        if names is None:
            raise ConfigurationError(f"{self.spec.instance_type} has no accelerator metrics that mlcdk publishes")
        return names

    #: The options every ``metric_*`` method takes, as for aws-cdk's ``cloudwatch.MetricOptions`` (the
    #: dimensions are the group's own) and, for metric math, ``cloudwatch.MathExpressionOptions``.
    METRIC_OPTIONS = ("account", "color", "id", "label", "period", "region", "stack_account", "stack_region",
                      "statistic", "unit", "visible")
    MATH_OPTIONS = ("color", "label", "period", "search_account", "search_region")

    @classmethod
    def _options(cls, options: dict, allowed: tuple[str, ...], **defaults) -> dict:
        """``defaults`` overridden by the caller's ``options`` (None means "the default"); unknown names refused."""
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigurationError(f"metric options ({', '.join(unknown)}) must be among {', '.join(allowed)}")
        return {**defaults, **{k: v for k, v in options.items() if v is not None}}

    def _metric(self, namespace: str, name: str, options: dict, *, period: cdk.Duration,
                statistic: str = "Average") -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map=self._metric_dimensions(),
                                 **self._options(options, self.METRIC_OPTIONS, period=period, statistic=statistic))

    def metric_accelerator_utilization(self, **options) -> cloudwatch.IMetric:
        """Accelerator (GPU or NeuronCore) utilization in percent, averaged over the cluster. ``options``:
        any of METRIC_OPTIONS (period, statistic, label, unit, color...). Default: Average over 5 minutes."""
        return self._metric(metrics.NAMESPACE, self._names().utilization, options, period=cdk.Duration.minutes(5))

    def metric_accelerator_memory_utilization(self, **options) -> cloudwatch.IMetric:
        """Accelerator memory in use, in percent of the cluster's accelerator memory. ``options``: as for
        metric_accelerator_utilization; where the percentage is metric math (used / total), period, label and
        color apply to the expression and the other options to both of its metrics."""
        names = self._names()
        if names.memory_utilization:
            return self._metric(metrics.NAMESPACE, names.memory_utilization, options, period=cdk.Duration.minutes(5))
        outer = self._options({k: v for k, v in options.items() if k in self.MATH_OPTIONS}, self.MATH_OPTIONS,
                              period=cdk.Duration.minutes(5), label="accelerator memory utilization (%)")
        inner = {k: v for k, v in options.items() if k not in ("color", "label", "search_account", "search_region")}
        used, total = (self._metric(metrics.NAMESPACE, n, inner, period=outer["period"], statistic="Sum")
                       for n in (names.memory_used, names.memory_total))
        return cloudwatch.MathExpression(expression="100 * used / total", using_metrics={"used": used, "total": total},
                                         **outer)

    def metric_cpu_utilization(self, **options) -> cloudwatch.IMetric:
        """CPU utilization in percent (AWS/EC2). ``options``: any of METRIC_OPTIONS. Default: Average, 5 minutes."""
        return self._metric("AWS/EC2", "CPUUtilization", options, period=cdk.Duration.minutes(5))

    def metric_hourly_cost(self, **options) -> cloudwatch.IMetric | None:
        """In-service instances x the catalog's hourly price (None when the catalog has no price). ``options``:
        any of MATH_OPTIONS (period, label, color...)."""
        metric = self.guardrails.metric_hourly_cost
        given = {k: v for k, v in options.items() if v is not None}
        if metric is None or not given:
            return metric
        return metric.with_(**self._options(given, self.MATH_OPTIONS))

    def metric_in_service_instances(self, **options) -> cloudwatch.IMetric:
        """Nodes in service (Auto Scaling group metrics are enabled on the group). ``options``: any of
        METRIC_OPTIONS. Default: Average over 1 minute."""
        return self._metric("AWS/AutoScaling", "GroupInServiceInstances", options, period=cdk.Duration.minutes(1))
