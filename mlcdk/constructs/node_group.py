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
from mlcdk.constructs.validation import check
from mlcdk.presets import catalog, metrics, workloads
from mlcdk.presets.catalog import InstanceSpec

DATA_DEVICE = "/dev/sdf"


def resolve_preset(kind: str, preset, instance_type: str | None, purchase: PurchaseOptions | None, *,
                   inference: bool) -> tuple[workloads.WorkloadPreset | None, InstanceSpec, PurchaseOptions]:
    """The preset (by name or object), the instance spec (explicit type over the preset's), and the purchase
    options (explicit over the preset's, else on-demand), with the checks both constructs share."""
    if isinstance(preset, str):
        preset = workloads.get(preset)
    check([(instance_type is None and preset is None, f"{kind} needs instance_type or preset")])
    if preset is not None:
        wanted = "an inference" if inference else "a training or fine-tuning"
        check([((preset.task == "inference") != inference,
                f"preset ({preset.name!r}) is a{'n' if preset.task == 'inference' else ''} {preset.task} preset; "
                f"{kind} needs {wanted} preset")])
    spec = catalog.get(instance_type or preset.instance_type)
    acc = spec.accelerator
    check([(acc is not None and acc.kind == "gpu" and acc.manufacturer != "NVIDIA",
            f"instance_type: {kind} runs NVIDIA GPUs, AWS Neuron devices or CPUs; {spec.instance_type} has "
            f"{acc.manufacturer if acc else ''} {acc.name if acc else ''} accelerators, for which mlcdk has no AMI, "
            "driver metrics or job container")])
    purchase = purchase or PurchaseOptions(option=preset.purchase_option if preset else "on-demand",
                                           on_demand_base_capacity=preset.on_demand_base_capacity if preset else 0)
    return preset, spec, purchase


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
                         placement_in_template: bool = True) -> tuple[ec2.LaunchTemplate, ec2.CfnPlacementGroup | None]:
    """The launch template every engine runs (IMDSv2, gp3 volumes encrypted with ``key``, every EFA interface
    when ``efa``) and, when ``cluster_placement``, a cluster placement group ("LaunchTemplate" and
    "PlacementGroup" under ``scope``). The template references the group unless ``placement_in_template`` is
    off (AWS Batch takes the group on the compute environment instead). ``role`` None: no instance profile
    (Batch ignores the template's and uses the compute environment's instance role)."""
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
        http_put_response_hop_limit=2,  # containers on the node reach IMDSv2 through one extra hop
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.launch_template, self.placement_group = node_launch_template(
            self, spec=spec, role=role, user_data=user_data, security_group=security_group, key=key,
            machine_image=machine_image, storage=storage, root_device_name=root_device_name, efa=efa,
            cluster_placement=cluster_placement)

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
                        "top-level launch template, not one inside a MixedInstancesPolicy; this group's template "
                        "requires IMDSv2 tokens (asserted in mlcdk's tests)")
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

    def metric_accelerator_utilization(self, *, period: cdk.Duration | None = None,
                                       statistic: str = "Average") -> cloudwatch.IMetric:
        """Accelerator (GPU or NeuronCore) utilization in percent, averaged over the cluster."""
        return cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=self._names().utilization,
                                 dimensions_map=self._metric_dimensions(), period=period or cdk.Duration.minutes(5),
                                 statistic=statistic, unit=None)

    def metric_accelerator_memory_utilization(self, *, period: cdk.Duration | None = None) -> cloudwatch.IMetric:
        """Accelerator memory in use, in percent of the cluster's accelerator memory."""
        names, period = self._names(), period or cdk.Duration.minutes(5)
        if names.memory_utilization:
            return cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=names.memory_utilization,
                                     dimensions_map=self._metric_dimensions(), period=period, statistic="Average")
        used, total = (cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=n, dimensions_map=self._metric_dimensions(),
                                         period=period, statistic="Sum") for n in (names.memory_used, names.memory_total))
        return cloudwatch.MathExpression(expression="100 * used / total", using_metrics={"used": used, "total": total},
                                         label="accelerator memory utilization (%)", period=period)

    def metric_cpu_utilization(self, *, period: cdk.Duration | None = None) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace="AWS/EC2", metric_name="CPUUtilization", dimensions_map=self._metric_dimensions(),
                                 period=period or cdk.Duration.minutes(5), statistic="Average")

    def metric_hourly_cost(self) -> cloudwatch.IMetric | None:
        """In-service instances x the catalog's hourly price (None when the catalog has no price)."""
        return self.guardrails.metric_hourly_cost

    def metric_in_service_instances(self, *, period: cdk.Duration | None = None) -> cloudwatch.IMetric:
        """Nodes in service (Auto Scaling group metrics are enabled on the group)."""
        return cloudwatch.Metric(namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances",
                                 dimensions_map=self._metric_dimensions(), period=period or cdk.Duration.minutes(1),
                                 statistic="Average")
