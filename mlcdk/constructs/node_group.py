"""NodeGroup: the launch template and Auto Scaling group shared by TrainingCluster and InferenceFleet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
from mlcdk.presets import metrics, workloads
from mlcdk.presets.catalog import InstanceSpec

DATA_DEVICE = "/dev/sdf"


def machine_image(given: ec2.IMachineImage | None, ami: workloads.MachineImage | None) -> ec2.IMachineImage:
    """The AMI the user brought, or the plan's catalog AMI, resolved at deploy time from its SSM public parameter."""
    return given if given is not None else ec2.MachineImage.from_ssm_parameter(ami.parameter)


@dataclass(frozen=True)
class LaunchTemplateProps:
    """What a node launch template holds (see :func:`node_launch_template`)."""

    spec: InstanceSpec
    role: iam.IRole | None
    user_data: ec2.UserData
    security_group: ec2.ISecurityGroup
    key: kms.IKey
    machine_image: ec2.IMachineImage
    storage: StorageOptions
    root_device_name: str
    efa: bool
    cluster_placement: bool
    placement_in_template: bool = True
    imds_hop_limit: int = 2


def node_launch_template(scope: Construct, props: LaunchTemplateProps,
                         ) -> tuple[ec2.LaunchTemplate, ec2.CfnPlacementGroup | None]:
    """The launch template every engine runs (IMDSv2, gp3 volumes encrypted with ``key``, every EFA interface
    when ``efa``) and, when ``cluster_placement``, a cluster placement group ("LaunchTemplate" and
    "PlacementGroup" under ``scope``). The template references the group unless ``placement_in_template`` is
    off (AWS Batch takes the group on the compute environment instead). ``role`` None: no instance profile
    (Batch ignores the template's and uses the compute environment's instance role). ``imds_hop_limit``: 1 keeps
    IMDSv2 tokens from crossing into bridge-networked containers (EC2 user guide, "Instance metadata options":
    the PUT response hop limit), 2 lets containers on the node reach IMDS."""
    launch_template = ec2.LaunchTemplate(
        scope, "LaunchTemplate",
        instance_type=ec2.InstanceType(props.spec.instance_type),
        machine_image=props.machine_image,
        role=props.role,
        user_data=props.user_data,
        security_group=props.security_group,
        require_imdsv2=True,
        http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
        http_put_response_hop_limit=props.imds_hop_limit,
        instance_metadata_tags=True,  # a node reads its group name (aws:autoscaling:groupName) from IMDS
        block_devices=_volumes(props.storage, props.root_device_name, props.key),
    )
    template = launch_template.node.default_child
    placement_group: ec2.CfnPlacementGroup | None = None
    if props.cluster_placement:
        placement_group = ec2.CfnPlacementGroup(scope, "PlacementGroup", strategy="cluster")
        if props.placement_in_template:
            # Ref is the group's name; GetAtt on placement groups is not supported everywhere.
            template.add_property_override("LaunchTemplateData.Placement.GroupName", placement_group.ref)
    if props.efa:
        group_id = props.security_group.security_group_id  # one jsii round trip, not one per interface
        interfaces = [{**nic, "Groups": [group_id]} for nic in efa_interfaces(props.spec)]
        template.add_property_override("LaunchTemplateData.NetworkInterfaces", interfaces)
        # EC2 rejects SecurityGroupIds beside NetworkInterfaces: the group is on every interface instead.
        template.add_property_deletion_override("LaunchTemplateData.SecurityGroupIds")
    return launch_template, placement_group


def _volumes(storage: StorageOptions, root_device_name: str, key: kms.IKey) -> list[ec2.BlockDevice]:
    """The root volume and the optional data volume: gp3, encrypted with ``key``, deleted with the node."""
    volumes = [ec2.BlockDevice(device_name=root_device_name, volume=ec2.BlockDeviceVolume.ebs(
        storage.root_volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True, kms_key=key,
        delete_on_termination=True))]
    if storage.data_volume_size_gib:
        volumes.append(ec2.BlockDevice(device_name=DATA_DEVICE, volume=ec2.BlockDeviceVolume.ebs(
            storage.data_volume_size_gib, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True, kms_key=key,
            iops=storage.data_volume_iops, throughput=storage.data_volume_throughput_mibs,
            delete_on_termination=True)))
    return volumes


@dataclass(frozen=True)
class NodeGroupProps:
    """A NodeGroup: its launch template, its size, where it runs, how it buys nodes and whom it notifies.
    ``desired_capacity`` None: the group keeps whatever size scaling gives it."""

    template: LaunchTemplateProps
    min_capacity: int
    max_capacity: int
    desired_capacity: int | None
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    purchase: PurchaseOptions
    fallback_instance_types: Sequence[str]
    notification_topic: sns.ITopic
    update_policy: autoscaling.UpdatePolicy | None = None
    health_checks: autoscaling.HealthChecks | None = None
    instance_warmup: cdk.Duration | None = None


class NodeGroup(Construct):
    """A launch template (IMDSv2, encrypted gp3 volumes, optional EFA interfaces and placement group) and
    the Auto Scaling group that runs it (on-demand, spot, or a mix with fallback types).

    Child IDs are fixed ("LaunchTemplate", "Nodes", "PlacementGroup"), whatever the instance type.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: NodeGroupProps) -> None:
        super().__init__(scope, construct_id)
        self.launch_template, self.placement_group = node_launch_template(self, props.template)
        types = [props.template.spec.instance_type, *props.fallback_instance_types]
        purchase = props.purchase
        mixed = purchase.uses_spot or len(types) > 1
        common = dict(
            vpc=props.vpc, vpc_subnets=props.subnets, min_capacity=props.min_capacity,
            max_capacity=props.max_capacity, desired_capacity=props.desired_capacity,
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=props.notification_topic)],
            capacity_rebalance=purchase.uses_spot or None, update_policy=props.update_policy,
            health_checks=props.health_checks, default_instance_warmup=props.instance_warmup,
        )
        if mixed:
            self.auto_scaling_group = autoscaling.AutoScalingGroup(
                self, "Nodes", mixed_instances_policy=self._mixed_policy(purchase, types), **common)
        else:
            self.auto_scaling_group = autoscaling.AutoScalingGroup(self, "Nodes", launch_template=self.launch_template,
                                                                   **common)
        self._acknowledge(mixed, props.desired_capacity)
        self.instance_types = tuple(types)

    def _mixed_policy(self, purchase: PurchaseOptions, types: list[str]) -> autoscaling.MixedInstancesPolicy:
        """On-demand, spot or the mix, with the fallback types after the primary (prioritized on demand)."""
        on_demand_base, on_demand_above = {
            "on-demand": (0, 100),
            "spot": (0, 0),
            "mixed": (purchase.on_demand_base_capacity, purchase.on_demand_percentage_above_base),
        }[purchase.option]
        return autoscaling.MixedInstancesPolicy(
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

    def _acknowledge(self, mixed: bool, desired_capacity: int | None) -> None:
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
