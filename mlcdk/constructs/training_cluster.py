"""TrainingCluster: a multi-node training cluster (Trainium or NVIDIA) from one line."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs import held_capacity
from mlcdk.constructs import security
from mlcdk.constructs import limits
from mlcdk.constructs.batch_engine import BatchEngine
from mlcdk.constructs.cluster_parts import ClusterInputs, ClusterParts
from mlcdk.constructs.efa import efa_device_count
from mlcdk.constructs.guardrail_options import REFERENCE_REGION, GuardrailOptions
from mlcdk.constructs.guardrails import Guardrails, GuardrailsProps
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.node_group import LaunchTemplateProps, NodeGroup, NodeGroupMixin, NodeGroupProps
from mlcdk.constructs.node_group import machine_image as node_machine_image
from mlcdk.constructs.options import (
    CapacityOptions, JobOptions, PurchaseOptions, ScaleSchedule, SharedStorageOptions, StorageOptions,
)
from mlcdk.constructs.plan_inputs import cluster_subnet, grace_input, stack_environment
from mlcdk.constructs.plan_training import TrainingPlan, TrainingRequest, plan_training
from mlcdk.constructs.shared_storage import SharedStorage, StorageSite
from mlcdk.constructs.user_data import NodeBoot, bootstrap
from mlcdk.constructs.validation import concrete
from mlcdk.constructs.warning_registry import warn_noted
from mlcdk.errors import ConfigurationError
from mlcdk.params import checked
from mlcdk.presets import discovery, metrics, workloads
from mlcdk.advice.results import Recommendation

#: The termination lifecycle hook's name, fixed so training scripts can complete it (see the README).
CHECKPOINT_HOOK = "mlcdk-checkpoint"
SPOT_EVENTS = ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]


@jsii.implements(ec2.IConnectable, iam.IGrantable)
class TrainingCluster(NodeGroupMixin, Construct):
    """Accelerated nodes wired for distributed training, and an engine that runs jobs on them.

    ``engine="batch"`` (the default): AWS Batch multi-node parallel jobs on a managed compute environment
    that runs no node while no job runs (see mlcdk.constructs.batch_engine and ``mlcdk submit``).
    ``engine="nodes"``: an Auto Scaling group of persistent nodes, for interactive work or a scheduler of
    your own.

    Facts (EFA interfaces, offered AZs, AMI parameter, spot support) come from the catalog. Precedence:
    security invariants, then explicit arguments, then the preset, then the defaults below.

    :param instance_type: the EC2 type, e.g. "trn1.32xlarge". Overrides the preset's type; the preset's
        fallback types are kept only where they can replace it. Default: the preset's.
    :param preset: a preset name (``mlcdk presets list``) or a WorkloadPreset. Default: none; then
        ``instance_type`` is required.
    :param engine: "batch" or "nodes" (see above). Default: "batch".
    :param job: the Batch job definition's image, timeout, retries and log retention (``engine="batch"``
        only). Default: JobOptions().
    :param nodes: cluster size: the most nodes a Batch job may use, or the group's desired and maximum.
        A whole number, never a deploy-time token: it decides EFA, the placement group and the cost at synth.
        Default: the preset's, else 1.
    :param vpc: the VPC. Default: a PrivateNetwork with private subnets in the AZ IDs (up to 3) of the
        stack's region that offer the type. A VPC from PrivateNetwork lets the cluster check its AZs.
    :param availability_zone_id: pin the nodes to this AZ ID (e.g. "use1-az4"). Needs a VPC whose subnets are
        pinned by AZ ID (PrivateNetwork, or none given); with another VPC it is refused, since a subnet's AZ
        name maps to an ID differently in every account. Default: the first AZ ID of the network that offers
        the type. All nodes share one AZ (one subnet).
    :param efa: attach every EFA interface the type supports. Default: on for multi-node clusters of
        EFA-capable types, off otherwise.
    :param placement_group: put the nodes in a cluster placement group. Default: on for multi-node
        clusters whose type supports it. Turn it off for On-Demand Capacity Reservations and Capacity
        Blocks, which a forced placement group can starve (a warning says so for EFA clusters).
    :param purchase: on-demand, spot or mixed, and fallback types. Default: the preset's purchase
        option, else on-demand.
    :param capacity: an On-Demand Capacity Reservation, a reservation group or a Capacity Block for ML
        to launch into (see CapacityOptions and the README's "Getting capacity"). It turns the default
        placement group off and prices the guardrails at the reservation's price. Default: none.
    :param storage: volume sizes and the optional data volume. Default: a 200 GiB gp3 root volume.
    :param shared_storage: an FSx for Lustre file system mounted at /fsx on every node (and in every Batch
        job), with the checkpoint bucket linked at /fsx/checkpoints (SharedStorageOptions; README "Shared
        storage (FSx for Lustre)"). It costs money while it exists. Default: none.
    :param machine_image: the AMI. Default: the catalog's AMI for the type (Neuron DLAMI or NVIDIA
        DLAMI), resolved at deploy time from its SSM public parameter.
    :param role: the node role. Default: a new role with SSM Session Manager and the CloudWatch agent's
        PutMetricData; on "nodes" also read/write on the checkpoint bucket and use of the cluster's key, which on
        "batch" only the job role has (the job's only identity; ``grant_principal`` is the job role there); on
        "batch" also the ECS agent's actions on Batch's ECS cluster and the job log stream.
    :param security_group: the node group. Default: a new group allowing all traffic within itself
        (EFA) and no other ingress. The self rules are added to a group you bring, too.
    :param encryption_key: the KMS key for volumes, the checkpoint bucket and the topic. Default: a new
        key with rotation.
    :param checkpoint_bucket: where checkpoints go. Default: a new KMS-encrypted, versioned, SSL-only
        bucket with access logs and a 30-day expiry of old versions.
    :param alarm_topic: the SNS topic for spot events, scaling notifications and alarms. Default: a new
        KMS-encrypted topic, with ``alarm_emails`` subscribed.
    :param alarm_emails: e-mail addresses subscribed to a new topic. Default: none.
    :param user_data_commands: shell commands run at the end of the node bootstrap, one per item. A single
        string is refused (write ["echo hi"]). Default: none.
    :param schedule: scale to zero and back on a schedule, in Auto Scaling's five-field cron and an IANA
        time zone (checked at synth). Default: no schedule.
    :param checkpoint_grace_period: how long a stopping job or node may take to checkpoint: on "nodes", a
        termination lifecycle hook; on "batch", the time between SIGTERM and SIGKILL of a job's container
        (ECS_CONTAINER_STOP_TIMEOUT). Whole seconds from 30 s to 2 hours (the hook's limit, kept on both
        engines). Default: 10 minutes.
    :param removal_policy: for the checkpoint bucket and the key. Default: RETAIN (checkpoints outlive
        the stack; the key must outlive them).
    :param guardrails: alarms, budget and dashboard (see GuardrailOptions). Default: all on, with the
        preset's thresholds.
    :param max_hourly_cost_usd: alarm when the cluster's hourly cost burn exceeds this (a shortcut for
        ``GuardrailOptions.max_hourly_cost_usd``). Default: no burn alarm.
    """

    @checked
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_type: str | None = None,
        preset: str | workloads.WorkloadPreset | None = None,
        engine: str = "batch",
        job: JobOptions | None = None,
        nodes: int | None = None,
        vpc: ec2.IVpc | None = None,
        availability_zone_id: str | None = None,
        efa: bool | None = None,
        placement_group: bool | None = None,
        purchase: PurchaseOptions | None = None,
        capacity: CapacityOptions | None = None,
        storage: StorageOptions | None = None,
        shared_storage: SharedStorageOptions | None = None,
        machine_image: ec2.IMachineImage | None = None,
        role: iam.IRole | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        encryption_key: kms.IKey | None = None,
        checkpoint_bucket: s3.IBucket | None = None,
        alarm_topic: sns.ITopic | None = None,
        alarm_emails: Sequence[str] = (),
        user_data_commands: Sequence[str] = (),
        schedule: ScaleSchedule | None = None,
        checkpoint_grace_period: cdk.Duration | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        guardrails: GuardrailOptions | None = None,
        max_hourly_cost_usd: float | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        #: The advisor's recommendation this cluster was built from (set by :meth:`from_workload`); None otherwise.
        self.recommendation: Recommendation | None = None
        grace = checkpoint_grace_period or cdk.Duration.minutes(10)
        # 1. Plan: resolve and check everything, before any resource exists (mlcdk.constructs.plan_training).
        #: The resolved plan this cluster was built from (mlcdk.constructs.plan_training.TrainingPlan).
        self.plan = plan = plan_training(TrainingRequest(
            instance_type=instance_type, preset=preset, engine=engine, job=job, nodes=nodes,
            availability_zone_id=availability_zone_id, efa=efa, placement_group=placement_group, purchase=purchase,
            capacity=capacity, storage=storage, shared_storage=shared_storage, alarm_emails=tuple(alarm_emails),
            schedule=schedule, grace=grace_input(grace), guardrails=guardrails, max_hourly_cost_usd=max_hourly_cost_usd,
            machine_image_given=machine_image is not None), stack_environment(self, vpc))
        self._record(plan, capacity)
        # 2. Network: one subnet, in an AZ that offers the type.
        vpc = vpc or PrivateNetwork(self, "Network", availability_zone_ids=plan.network_az_ids).vpc
        subnet = cluster_subnet(vpc, plan.az_id)
        # 3. Security: key, group, role, topic, bucket, the node policies and the shared file system.
        inputs = ClusterInputs(encryption_key, security_group, role, alarm_topic, checkpoint_bucket, machine_image,
                               removal_policy, grace, tuple(user_data_commands))
        node_policies = self._security(plan, vpc, inputs)
        self._shared_storage(shared_storage, vpc, subnet, removal_policy, construct_id)
        # 4. Engine: Batch or persistent nodes, each taking the plan and the parts.
        self._engine(plan, self._parts(plan, vpc, subnet, inputs), node_policies, capacity)
        # 5. Guardrails: alarms, budget, dashboard, cost; the capacity block's and spot's events.
        self._guardrails(plan, construct_id, grace)

    def _record(self, plan: TrainingPlan, capacity: CapacityOptions | None) -> None:
        """What the plan resolved, as the cluster's public attributes; the plan's warnings noted on the cluster."""
        #: The name ``mlcdk clusters`` lists and ``mlcdk submit --cluster`` takes (engine="batch"; None on "nodes").
        self.cli_name = self._cli_name() if plan.batch else None
        warn_noted(self, plan.warnings)
        self.spec, self.nodes, self.efa, self.purchase, self.capacity = plan.spec, plan.nodes, plan.efa, plan.purchase, capacity
        self.engine, self.cluster_name = plan.engine, cdk.Names.unique_id(self)
        self.availability_zone_id = plan.az_id

    def _shared_storage(self, options: SharedStorageOptions | None, vpc: ec2.IVpc, subnet: ec2.ISubnet,
                        removal_policy: cdk.RemovalPolicy, label: str) -> None:
        """The FSx for Lustre file system, when asked for, open to the nodes' group only; the nodes' connections."""
        self.shared_storage = None if options is None else SharedStorage(
            self, "SharedStorage", options=options, site=StorageSite(
                vpc=vpc, subnet=subnet, node_security_group=self.security_group, key=self.encryption_key,
                checkpoint_bucket=self.checkpoint_bucket, removal_policy=removal_policy, label=label,
                reference_region=REFERENCE_REGION))
        self._connections = ec2.Connections(security_groups=[self.security_group])

    def _engine(self, plan: TrainingPlan, parts: ClusterParts, node_policies: list[iam.Policy],
                capacity: CapacityOptions | None) -> None:
        """Batch or persistent nodes, then the capacity reservation on their launch template."""
        if plan.batch:
            self._build_batch(plan, parts, node_policies)
        else:
            self._build_nodes(plan, parts, node_policies)
        held_capacity.apply(self.launch_template, capacity)
        if self.shared_storage is not None:  # nodes mount it at boot: the file system and its links come first
            (self.auto_scaling_group or self.compute_environment).node.add_dependency(self.shared_storage)

    def _security(self, plan: TrainingPlan, vpc: ec2.IVpc, inputs: ClusterInputs) -> list[iam.Policy]:
        """The key, node security group, node role, alarm topic and checkpoint bucket: what the user brought
        (``inputs``), else secure defaults. Returns the node role's policies: the host's needs; on Batch the job's
        role is the job's only identity and alone reaches the checkpoint bucket and key (a container that reached
        the node's role would find neither)."""
        security_group, removal_policy, label = inputs.security_group, inputs.removal_policy, self.node.id
        self.encryption_key = inputs.encryption_key or security.encryption_key(
            self, "Key", description=f"{label}: volumes, checkpoints, notifications", removal_policy=removal_policy)
        self.security_group = security_group or security.cluster_security_group(
            self, "SecurityGroup", vpc=vpc, description=f"{label} training nodes: EFA self traffic, no SSH")
        if security_group is not None:
            security.allow_self_traffic(self, "SecurityGroupSelf", security_group)
        self.role = inputs.role or security.node_role(self, "Role", description=f"{label} training nodes")
        self.alarm_topic = inputs.alarm_topic or security.alarm_topic(
            self, "AlarmTopic", key=self.encryption_key, emails=plan.emails)
        self.checkpoint_bucket = inputs.checkpoint_bucket or security.checkpoint_bucket(
            self, "Checkpoints", key=self.encryption_key, removal_policy=removal_policy)
        policies = [security.agent_policy(self, "AgentPolicy", self.role)]
        if not plan.batch:
            policies.append(security.data_policy(self, "CheckpointPolicy", self.role, bucket=self.checkpoint_bucket,
                                                 key=self.encryption_key))
        return policies

    def _parts(self, plan: TrainingPlan, vpc: ec2.IVpc, subnet: ec2.ISubnet, inputs: ClusterInputs) -> ClusterParts:
        """The parts every engine builds on, with the nodes' boot script (user data)."""
        shared = self.shared_storage
        user_data = ec2.UserData.for_linux()
        user_data.add_commands(*bootstrap(plan.spec, NodeBoot(
            efa=plan.efa, data_mount_point=plan.data_mount_point, cluster=self.cluster_name,
            batch_efa_devices=(efa_device_count(plan.spec) if plan.efa else None) if plan.batch else None,
            batch_stop_timeout_s=plan.grace_seconds if plan.batch else None,
            shared_storage=shared.mount_commands(neuron=plan.neuron) if shared else (),
            extra=[f"echo MLCDK_CHECKPOINT_BUCKET={self.checkpoint_bucket.bucket_name} >> /etc/environment",
                   *([] if plan.batch else [f"echo MLCDK_LIFECYCLE_HOOK={CHECKPOINT_HOOK} >> /etc/environment"]),
                   *inputs.user_data_commands])))
        return ClusterParts(
            vpc=vpc, subnet=subnet, security_group=self.security_group, role=self.role, key=self.encryption_key,
            machine_image=node_machine_image(inputs.machine_image, plan.ami), user_data=user_data,
            checkpoint_bucket=self.checkpoint_bucket, alarm_topic=self.alarm_topic, removal_policy=inputs.removal_policy,
            label=self.node.id, grace=inputs.grace, shared_mount_point=shared.mount_point if shared else None,
            shared_environment=shared.job_environment(neuron=plan.neuron) if shared else None)

    def _build_nodes(self, plan: TrainingPlan, parts: ClusterParts, node_policies: list[iam.Policy]) -> None:
        """engine="nodes": an Auto Scaling group of persistent nodes with a checkpoint lifecycle hook."""
        self.batch = self.job_queue = self.job_definition = self.log_group = self.task_network = self.job_role = None
        self.compute_environment = None
        group = NodeGroup(self, "NodeGroup", props=NodeGroupProps(
            template=LaunchTemplateProps(
                spec=plan.spec, role=parts.role, user_data=parts.user_data, security_group=parts.security_group,
                key=parts.key, machine_image=parts.machine_image, storage=plan.storage,
                root_device_name=plan.root_device_name, efa=plan.efa, cluster_placement=plan.cluster_placement),
            min_capacity=0, max_capacity=plan.nodes, desired_capacity=plan.nodes, vpc=parts.vpc,
            subnets=ec2.SubnetSelection(subnets=[parts.subnet]), purchase=plan.purchase,
            fallback_instance_types=plan.fallbacks, notification_topic=parts.alarm_topic))
        self.launch_template = group.launch_template
        self.auto_scaling_group = group.auto_scaling_group
        self.placement_group = group.placement_group
        for policy in node_policies:  # nodes start with their permissions in place
            self.auto_scaling_group.node.add_dependency(policy)
        self.instance_types = group.instance_types
        self.auto_scaling_group.add_lifecycle_hook(
            "CheckpointOnTermination", lifecycle_hook_name=CHECKPOINT_HOOK,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=parts.grace, default_result=autoscaling.DefaultResult.CONTINUE)
        security.lifecycle_policy(self, "LifecyclePolicy", self.role, self.auto_scaling_group.auto_scaling_group_arn)
        schedule = plan.schedule
        if schedule is not None:
            zone = schedule.time_zone
            self.auto_scaling_group.scale_on_schedule("ScheduledStop", schedule=autoscaling.Schedule.expression(schedule.stop),
                                                      desired_capacity=0, min_capacity=0, time_zone=zone)
            self.auto_scaling_group.scale_on_schedule("ScheduledStart", schedule=autoscaling.Schedule.expression(schedule.start),
                                                      desired_capacity=plan.nodes, time_zone=zone)

    def _build_batch(self, plan: TrainingPlan, parts: ClusterParts, node_policies: list[iam.Policy]) -> None:
        """engine="batch": a Batch compute environment (no node while no job runs), queue and job definition."""
        self.batch = BatchEngine(self, "Batch", plan=plan, parts=parts)
        for policy in (*node_policies, self.batch.agent_policy):  # nodes start with their permissions in place
            self.batch.compute_environment.node.add_dependency(policy)
        self.auto_scaling_group = None
        self.launch_template, self.placement_group = self.batch.launch_template, self.batch.placement_group
        self.job_queue, self.job_definition = self.batch.job_queue, self.batch.job_definition
        self.log_group, self.job_role = self.batch.log_group, self.batch.job_role
        self.compute_environment = self.batch.compute_environment
        #: The job containers' interfaces: their security group, its rules, card 0's free slots (batch_network).
        self.task_network = self.batch.task_network
        self.instance_types = plan.instance_types
        self._tag_for_job_commands(plan.nodes)

    def _guardrails(self, plan: TrainingPlan, label: str, grace: cdk.Duration) -> None:
        """Alarms, budget, dashboard and cost (with the shared file system's), the Capacity Block's events, and the
        spot interruption notices, all to the alarm topic."""
        shared = self.shared_storage
        self.guardrails = Guardrails(self, "Guardrails", props=GuardrailsProps(
            source=self, spec=plan.spec, auto_scaling_group=self.auto_scaling_group, max_nodes=plan.nodes,
            purchase=plan.purchase, topic=self.alarm_topic, emails=plan.emails, options=plan.guardrails,
            thresholds=plan.thresholds, label=label, capacity=plan.capacity,
            extra_alarms=(lambda g: shared.add_alarms(g, label)) if shared else None,
            extra_monthly_costs=[(shared.cost_label, shared.monthly_cost_usd)]
            if shared and shared.monthly_cost_usd is not None else ()))
        held_capacity.events_and_schedule(self, plan.capacity, held_capacity.BlockEnd(
            topic=self.alarm_topic, label=label, grace=grace, auto_scaling_group=self.auto_scaling_group))
        if plan.purchase.uses_spot:
            events.Rule(self, "SpotInterruptions", description=f"{label}: spot interruption and rebalance notices",
                        event_pattern=events.EventPattern(source=["aws.ec2"], detail_type=SPOT_EVENTS),
                        targets=[security.TopicTarget(self.alarm_topic)])

    def _cli_name(self) -> str:
        """The stack's name and this construct's path in it (mlcdk.presets.discovery.cluster_name)."""
        stack = cdk.Stack.of(self)
        stack_name = stack.stack_name if concrete(stack.stack_name) else stack.node.path
        try:
            return discovery.cluster_name(stack_name, self.node.path[len(stack.node.path) + 1:])
        except ValueError as error:
            raise ConfigurationError(str(error)) from None

    def _tag_for_job_commands(self, nodes: int) -> None:
        """Tags through which `mlcdk submit`, `jobs`, `logs` and `cancel` find this cluster in any stack (why tags on
        the job queue: mlcdk.presets.discovery)."""
        queue_tags = {discovery.CLUSTER_TAG: self.cli_name, discovery.DEFINITION_TAG: self.job_definition.job_definition_arn,
                      discovery.LOG_GROUP_TAG: self.log_group.log_group_name, discovery.MAX_NODES_TAG: str(nodes),
                      discovery.BUCKET_TAG: self.checkpoint_bucket.bucket_name}
        for key, value in queue_tags.items():
            cdk.Tags.of(self.job_queue).add(key, value)
        cdk.Tags.of(self.job_definition).add(discovery.CLUSTER_TAG, self.cli_name)

    # ----------------------------------------------------------------------------------------
    # Metrics: the Batch engine's nodes belong to an Auto Scaling group that Batch names at run time, so its
    # metrics address the cluster by the MlcdkCluster dimension every node adds (on both engines).
    # ----------------------------------------------------------------------------------------

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """Who a grant reaches: on "batch", the job role (the jobs' only identity; the nodes' role keeps only what
        the host needs); on "nodes", the node role."""
        if self.engine == "batch":
            return self.job_role.grant_principal
        return self.role.grant_principal

    def _metric_dimensions(self) -> dict[str, str]:
        if self.engine == "batch":
            return {metrics.CLUSTER_DIMENSION: self.cluster_name}
        return super()._metric_dimensions()

    def metric_cpu_utilization(self, **options) -> cloudwatch.IMetric:
        """CPU utilization in percent, averaged over the nodes (the CloudWatch agent's on Batch). ``options``:
        any of METRIC_OPTIONS. Default: Average, 5 minutes."""
        if self.engine != "batch":
            return super().metric_cpu_utilization(**options)
        return self._metric(metrics.NAMESPACE, metrics.CPU_ACTIVE, options, period=cdk.Duration.minutes(5))

    def metric_in_service_instances(self, **options) -> cloudwatch.IMetric:
        """Nodes running: the group's in-service count ("nodes"), or on Batch the nodes' per-minute
        ``mlcdk_nodes`` gauges summed and divided by the minutes in the period. ``options``: as for
        NodeGroupMixin (on Batch, a metric-math expression: MATH_OPTIONS only). Default: 1 minute."""
        if self.engine != "batch":
            return super().metric_in_service_instances(**options)
        outer = self._options(options, self.MATH_OPTIONS, period=cdk.Duration.minutes(1), label="nodes running")
        gauge = cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=metrics.NODES,
                                  dimensions_map=self._metric_dimensions(), statistic="Sum", period=outer["period"])
        return cloudwatch.MathExpression(expression="FILL(nodes, 0) / (PERIOD(nodes) / 60)", using_metrics={"nodes": gauge},
                                         **outer)

    @classmethod
    def from_workload(cls, scope: Construct, construct_id: str, *, workload, **kwargs) -> TrainingCluster:
        """The cluster the advisor ranks first for ``workload`` (a ``mlcdk.presets.sizing.Workload``) in the
        stack's region: its instance type and node count, on-demand or spot as the workload asks. Other
        keyword arguments pass through. ``recommendation`` on the result explains the choice."""
        from mlcdk.constructs.from_workload import recommend_for_stack

        top, purchase = recommend_for_stack(scope, workload, training=True)
        kwargs.setdefault("purchase", purchase)
        cluster = cls(scope, construct_id, instance_type=top.instance_type, nodes=top.nodes, **kwargs)
        cluster.recommendation = top
        return cluster
