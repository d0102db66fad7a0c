"""TrainingCluster: a multi-node training cluster (Trainium or NVIDIA) from one line."""

from __future__ import annotations

import dataclasses
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

from mlcdk.advice.results import Recommendation
from mlcdk.constructs import held_capacity
from mlcdk.constructs import security
from mlcdk.constructs import limits
from mlcdk.constructs.batch_engine import BatchEngine
from mlcdk.constructs.efa import efa_device_count
from mlcdk.constructs.guardrails import REFERENCE_REGION, GuardrailOptions, Guardrails, validate_guardrail_options
from mlcdk.constructs.network import PrivateNetwork, network_az_ids
from mlcdk.constructs.node_group import (
    NodeGroup, NodeGroupMixin, resolve_machine_image, resolve_preset, select_fallbacks, warn_dropped_fallbacks,
)
from mlcdk.constructs.options import (
    JOB_ATTEMPTS, JOB_TIMEOUT_HOURS, LOG_RETENTION_DAYS,
    CapacityOptions, JobOptions, PurchaseOptions, ScaleSchedule, SharedStorageOptions, StorageOptions,
)
from mlcdk.constructs.shared_storage import SharedStorage
from mlcdk.constructs.shared_storage import validate as validate_shared_storage
from mlcdk.constructs.user_data import bootstrap
from mlcdk.constructs.validation import check, concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.errors import ConfigurationError
from mlcdk.params import checked
from mlcdk.presets import catalog, discovery, images, metrics, workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.counts import MAX_NODES
from mlcdk.presets.identifiers import parse_emails
from mlcdk.presets.secrets import job_secret_problem

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
        stack = cdk.Stack.of(self)
        region = stack.region if concrete(stack.region) else None

        # 1. Resolve: explicit arguments, then the preset, then defaults.
        preset, spec, purchase = resolve_preset("TrainingCluster", preset, instance_type, purchase, inference=False)
        nodes = nodes if nodes is not None else (preset.nodes if preset else 1)
        storage = storage or StorageOptions()
        emails = parse_emails(list(alarm_emails), "alarm_emails")
        guardrail_options = guardrails or GuardrailOptions()
        if max_hourly_cost_usd is not None:
            guardrail_options = dataclasses.replace(guardrail_options, max_hourly_cost_usd=max_hourly_cost_usd)

        # 2. Validate, before any resource exists.
        self._validate(spec, nodes, storage, efa, placement_group, region, availability_zone_id)
        multi_node = nodes > 1
        self._validate_engine(engine, job, nodes, purchase, schedule, guardrails)
        grace = checkpoint_grace_period or cdk.Duration.minutes(10)
        grace_seconds = limits.grace_period_seconds(grace, engine)
        if schedule is not None:
            limits.check_schedule(schedule)
        thresholds = validate_guardrail_options(guardrail_options, preset.alarms if preset else None)
        if shared_storage is not None:
            validate_shared_storage(shared_storage, cluster_vpc_id=vpc.vpc_id if vpc is not None else None,
                                    creates_vpc=vpc is None)
        limits.check_node_paths(storage, shared_storage)
        held_capacity.validate(capacity, spec=spec, purchase=purchase, region=region, az_id=availability_zone_id,
                               placement_group=placement_group, engine=engine,
                               account=stack.account if concrete(stack.account) else None)
        pinned_by = "capacity.availability_zone_id" if capacity is not None and capacity.availability_zone_id else (
            "availability_zone_id")
        availability_zone_id = held_capacity.az_for(capacity, availability_zone_id)
        check([(vpc is None and region is None and availability_zone_id is not None,
                f"{pinned_by} ({availability_zone_id}): the stack is env-agnostic, so mlcdk cannot build a network in "
                "that AZ (the deploy region is unknown at synth, and its subnets would go to the first AZs of "
                "Fn::GetAZs); give the stack a region (env=cdk.Environment(region=...)), or pass vpc= a PrivateNetwork "
                "pinned to that AZ ID")])
        if vpc is not None and availability_zone_id is not None and not self._pinned_by_az_id(vpc):
            raise ConfigurationError(
                f"{pinned_by} ({availability_zone_id}): the VPC you brought does not pin its subnets by AZ ID (AZ "
                "names map to IDs differently in every account), so mlcdk cannot place the nodes in that AZ; build "
                "the VPC with PrivateNetwork(availability_zone_ids=[...]), or leave the AZ ID out (the nodes then go "
                "to the VPC's first private subnet)")
        job = job or JobOptions()
        batch_engine = engine == "batch"
        #: The name ``mlcdk clusters`` lists and ``mlcdk submit --cluster`` takes (engine="batch"; None on "nodes").
        self.cli_name = self._cli_name() if batch_engine else None
        efa = efa if efa is not None else (multi_node and spec.efa_supported)
        cluster_placement = held_capacity.placement_default(capacity, placement_group, multi_node, spec)
        image, root_device = resolve_machine_image(spec, machine_image, storage.root_device_name, engine)
        fallbacks, dropped = select_fallbacks(spec, purchase, preset, same_accelerator_model=True, efa=efa,
                                              region=region, az_id=self._intended_az(vpc, spec, region, availability_zone_id))
        if dropped:
            warn_dropped_fallbacks(self, spec, dropped)
        fallbacks = held_capacity.reservation_fallbacks(self, capacity, spec, fallbacks)
        if batch_engine and multi_node and fallbacks:
            # A multi-node job definition names one instance type for every node: fallbacks cannot be used.
            if purchase.fallback_instance_types is not None:
                raise ConfigurationError(
                    f"purchase.fallback_instance_types ({', '.join(fallbacks)}): engine='batch' runs a multi-node job "
                    f"on one instance type ({spec.instance_type}); drop the fallbacks, or use engine='nodes'")
            warn(self, "batchFallbacksUnused", fallbacks=", ".join(fallbacks), instance_type=spec.instance_type)
            fallbacks = ()
        if batch_engine:
            job = self._job_image(job, spec, fallbacks)

        # 3. Network: one subnet, in an AZ that offers the type.
        if vpc is None:
            vpc = PrivateNetwork(self, "Network",
                                 availability_zone_ids=network_az_ids(spec, region, availability_zone_id)).vpc
        subnet, self.availability_zone_id = self._placement_subnet(vpc, spec, region, availability_zone_id)

        # 4. Security: key, group, role, topic, bucket.
        self.encryption_key = encryption_key or security.encryption_key(
            self, "Key", description=f"{construct_id}: volumes, checkpoints, notifications", removal_policy=removal_policy)
        self.security_group = security_group or security.cluster_security_group(
            self, "SecurityGroup", vpc=vpc, description=f"{construct_id} training nodes: EFA self traffic, no SSH")
        if security_group is not None:
            security.allow_self_traffic(self, "SecurityGroupSelf", security_group)
        self.role = role or security.node_role(self, "Role", description=f"{construct_id} training nodes")
        self.alarm_topic = alarm_topic or security.alarm_topic(self, "AlarmTopic", key=self.encryption_key, emails=emails)
        self.checkpoint_bucket = checkpoint_bucket or security.checkpoint_bucket(
            self, "Checkpoints", key=self.encryption_key, removal_policy=removal_policy)
        # The node role holds what the host needs. On Batch the job's role is the job's only identity: it alone
        # reaches the checkpoint bucket and key (a container that reached the node's role would find neither).
        node_policies = [security.agent_policy(self, "AgentPolicy", self.role)]
        if not batch_engine:
            node_policies.append(security.data_policy(self, "CheckpointPolicy", self.role, bucket=self.checkpoint_bucket,
                                                      key=self.encryption_key))
        neuron = spec.accelerator is not None and spec.accelerator.kind == "neuron"
        self.shared_storage = None if shared_storage is None else SharedStorage(
            self, "SharedStorage", options=shared_storage, vpc=vpc, subnet=subnet, node_security_group=self.security_group,
            key=self.encryption_key, checkpoint_bucket=self.checkpoint_bucket, removal_policy=removal_policy,
            label=construct_id, reference_region=REFERENCE_REGION)

        # 5. Nodes: the engine.
        self.engine, self.cluster_name = engine, cdk.Names.unique_id(self)
        user_data = ec2.UserData.for_linux()
        devices = efa_device_count(spec) if efa else None
        user_data.add_commands(*bootstrap(
            spec, efa=efa, data_mount_point=storage.data_mount_point if storage.data_volume_size_gib else None,
            cluster=self.cluster_name, batch_efa_devices=devices if batch_engine else None,
            batch_stop_timeout_s=grace_seconds if batch_engine else None,
            shared_storage=self.shared_storage.mount_commands(neuron=neuron) if self.shared_storage else (),
            extra=[f"echo MLCDK_CHECKPOINT_BUCKET={self.checkpoint_bucket.bucket_name} >> /etc/environment",
                   *([] if batch_engine else [f"echo MLCDK_LIFECYCLE_HOOK={CHECKPOINT_HOOK} >> /etc/environment"]),
                   *user_data_commands]))
        self.spec, self.nodes, self.efa, self.purchase, self.capacity = spec, nodes, efa, purchase, capacity
        self._connections = ec2.Connections(security_groups=[self.security_group])
        if batch_engine:
            self._build_batch(spec, nodes, fallbacks, vpc, subnet, image, user_data, storage, root_device, efa,
                              cluster_placement, purchase, job, removal_policy, construct_id, node_policies)
        else:
            self._build_nodes(spec, nodes, fallbacks, vpc, subnet, image, user_data, storage, root_device, efa,
                              cluster_placement, purchase, node_policies, grace, schedule, construct_id)
        held_capacity.apply(self.launch_template, capacity)
        if self.shared_storage is not None:  # nodes mount it at boot: the file system and its links come first
            (self.auto_scaling_group or self.compute_environment).node.add_dependency(self.shared_storage)

        # 6. Guardrails: alarms, budget, dashboard, cost.
        options = guardrail_options
        self.guardrails = Guardrails(
            self, "Guardrails", source=self, spec=spec, auto_scaling_group=self.auto_scaling_group, max_nodes=nodes,
            purchase=purchase, topic=self.alarm_topic, emails=emails, options=options,
            thresholds=thresholds, label=construct_id, capacity=capacity,
            extra_alarms=(lambda g: self.shared_storage.add_alarms(g, construct_id)) if self.shared_storage else None,
            extra_monthly_costs=[(self.shared_storage.cost_label, self.shared_storage.monthly_cost_usd)]
            if self.shared_storage and self.shared_storage.monthly_cost_usd is not None else ())

        # 7. Interruptions and warnings.
        held_capacity.events_and_schedule(self, capacity, topic=self.alarm_topic, label=construct_id, grace=grace,
                                          auto_scaling_group=self.auto_scaling_group, engine=engine)
        if purchase.uses_spot:
            events.Rule(self, "SpotInterruptions", description=f"{construct_id}: spot interruption and rebalance notices",
                        event_pattern=events.EventPattern(source=["aws.ec2"], detail_type=SPOT_EVENTS),
                        targets=[security.TopicTarget(self.alarm_topic)])
        if multi_node and efa and not cluster_placement and not (capacity is not None and capacity.capacity_block):
            why = ("a reservation made outside it cannot serve nodes placed in a new one (eksctl #7949), so it "
                   "stays off; ask for a reservation in a cluster placement group if latency matters"
                   if capacity is not None else
                   "inter-node latency may be higher. Keep it off only for capacity reservations or Capacity Blocks")
            warn(self, "placementGroupOff", nodes=nodes, instance_type=spec.instance_type, reason=why)
        if capacity is not None and cluster_placement:
            warn(self, "placementWithReservation")
        if multi_node and efa is False and spec.efa_supported:
            warn(self, "efaOff", nodes=nodes, instance_type=spec.instance_type,
                 efa_interfaces=spec.maximum_efa_interfaces)
        if multi_node and not spec.efa_supported:
            warn(self, "noEfa", instance_type=spec.instance_type, nodes=nodes,
                 bandwidth=spec.network_performance or "its network bandwidth")

    def _build_nodes(self, spec, nodes, fallbacks, vpc, subnet, image, user_data, storage, root_device, efa,
                     cluster_placement, purchase, node_policies, grace, schedule, construct_id) -> None:
        """engine="nodes": an Auto Scaling group of persistent nodes with a checkpoint lifecycle hook."""
        self.batch = self.job_queue = self.job_definition = self.log_group = self.task_network = self.job_role = None
        group = NodeGroup(
            self, "NodeGroup", spec=spec, min_capacity=0, max_capacity=nodes, desired_capacity=nodes, vpc=vpc,
            subnets=ec2.SubnetSelection(subnets=[subnet]), security_group=self.security_group, role=self.role,
            key=self.encryption_key, machine_image=image, user_data=user_data, storage=storage,
            root_device_name=root_device, efa=efa, cluster_placement=cluster_placement, purchase=purchase,
            fallback_instance_types=fallbacks, notification_topic=self.alarm_topic)
        self.launch_template = group.launch_template
        self.auto_scaling_group = group.auto_scaling_group
        self.placement_group = group.placement_group
        for policy in node_policies:  # nodes start with their permissions in place
            self.auto_scaling_group.node.add_dependency(policy)
        self.instance_types = group.instance_types
        self.auto_scaling_group.add_lifecycle_hook(
            "CheckpointOnTermination", lifecycle_hook_name=CHECKPOINT_HOOK,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=grace, default_result=autoscaling.DefaultResult.CONTINUE)
        security.lifecycle_policy(self, "LifecyclePolicy", self.role, self.auto_scaling_group.auto_scaling_group_arn)
        if schedule is not None:
            zone = schedule.time_zone
            self.auto_scaling_group.scale_on_schedule("ScheduledStop", schedule=autoscaling.Schedule.expression(schedule.stop),
                                                      desired_capacity=0, min_capacity=0, time_zone=zone)
            self.auto_scaling_group.scale_on_schedule("ScheduledStart", schedule=autoscaling.Schedule.expression(schedule.start),
                                                      desired_capacity=nodes, time_zone=zone)

    def _build_batch(self, spec, nodes, fallbacks, vpc, subnet, image, user_data, storage, root_device, efa,
                     cluster_placement, purchase, job, removal_policy, construct_id, node_policies) -> None:
        """engine="batch": a Batch compute environment (no node while no job runs), queue and job definition."""
        types = (spec.instance_type, *fallbacks)
        self.batch = BatchEngine(
            self, "Batch", spec=spec, nodes=nodes, instance_types=types, vpc=vpc, subnet=subnet,
            security_group=self.security_group, role=self.role, key=self.encryption_key, machine_image=image,
            user_data=user_data, storage=storage, root_device_name=root_device, efa=efa,
            cluster_placement=cluster_placement, spot=purchase.uses_spot, checkpoint_bucket=self.checkpoint_bucket,
            alarm_topic=self.alarm_topic, job=job, removal_policy=removal_policy, label=construct_id,
            shared_mount_point=self.shared_storage.mount_point if self.shared_storage else None,
            shared_environment=self.shared_storage.job_environment(
                neuron=spec.accelerator is not None and spec.accelerator.kind == "neuron") if self.shared_storage else None)
        for policy in (*node_policies, self.batch.agent_policy):  # nodes start with their permissions in place
            self.batch.compute_environment.node.add_dependency(policy)
        self.auto_scaling_group = None
        self.launch_template, self.placement_group = self.batch.launch_template, self.batch.placement_group
        self.job_queue, self.job_definition = self.batch.job_queue, self.batch.job_definition
        self.log_group, self.job_role = self.batch.log_group, self.batch.job_role
        self.compute_environment = self.batch.compute_environment
        #: The job containers' interfaces: their security group, its rules, card 0's free slots (batch_network).
        self.task_network = self.batch.task_network
        self.instance_types = types
        self._tag_for_job_commands(nodes)

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

    # ----------------------------------------------------------------------------------------
    # Validation
    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _validate(spec: InstanceSpec, nodes, storage: StorageOptions, efa, placement_group,
                  region: str | None, az_id: str | None) -> None:
        name = spec.instance_type
        offering = workloads.offering_problem(spec, region, az_id)
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
            (efa is True and not spec.efa_supported, f"efa: {name} does not support EFA"),
            (placement_group is True and not spec.supports_placement("cluster"),
             f"placement_group: {name} does not support cluster placement groups"),
        ])
        limits.validate_storage(storage)

    @staticmethod
    def _validate_engine(engine, job, nodes, purchase: PurchaseOptions, schedule, guardrails) -> None:
        """The engine and what it can honour: a setting one engine cannot honour is refused, never ignored."""
        check([(engine not in workloads.ENGINES,
                f"engine ({engine!r}) must be one of {', '.join(workloads.ENGINES)}")])
        if engine == "nodes":
            check([(job is not None, "job: JobOptions configure the Batch job definition; engine='nodes' has none "
                                     "(use engine='batch', or drop job=)")])
            return
        job = job or JobOptions()  # types were checked by mlcdk.params; these are Batch's ranges
        timeout = job.timeout_hours
        image_problem = workloads.image_reference_problem(job.image) if job.image is not None else None
        purchase_problem = workloads.engine_purchase_problem(engine, purchase.option, nodes)
        check([
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
            (purchase_problem is not None, f"purchase ({purchase.option!r}) {purchase_problem}"),
            *((True, f"job.secrets: {problem}") for name, arn in (job.secrets or {}).items()
              if (problem := job_secret_problem(name, arn)) is not None),
            (schedule is not None,
             "schedule with engine='batch': Batch already runs no node while no job runs; stop a running job with "
             "`mlcdk cancel`, or use engine='nodes' for scheduled persistent nodes"),
            (guardrails is not None and guardrails.scale_to_zero_when_idle,
             "guardrails.scale_to_zero_when_idle with engine='batch': Batch scales to zero when the queue is empty; "
             "an idle job keeps its nodes until it ends or is cancelled (the idle alarm notifies you)"),
        ])

    def _job_image(self, job: JobOptions, spec: InstanceSpec, fallbacks: Sequence[str]) -> JobOptions:
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
            warn(self, "jobImageUnchecked", image=job.image, instance_type=spec.instance_type,
                 needs=images.needs_of(spec))
        return job

    @staticmethod
    def _pinned_by_az_id(vpc: ec2.IVpc) -> bool:
        """True for a VPC from PrivateNetwork with AZ IDs: only there does mlcdk know each subnet's AZ ID at synth
        (``ec2.ISubnet.availability_zone`` is an AZ name, which maps to an ID differently in every account)."""
        network = vpc.node.scope
        return isinstance(network, PrivateNetwork) and bool(network.availability_zone_ids)

    @staticmethod
    def _intended_az(vpc: ec2.IVpc | None, spec: InstanceSpec, region: str | None, az_id: str | None) -> str | None:
        """The AZ ID the nodes will use, known before any resource exists (None when it cannot be known)."""
        if az_id or region is None:
            return az_id
        network = vpc.node.scope if vpc is not None else None
        ids = network.availability_zone_ids if isinstance(network, PrivateNetwork) else None
        if vpc is None or ids:
            offered = [i for i in (ids or spec.offered_azs(region)) if i in spec.offered_azs(region)]
            return offered[0] if offered else None
        return None

    def _placement_subnet(self, vpc: ec2.IVpc, spec: InstanceSpec, region: str | None,
                          az_id: str | None) -> tuple[ec2.ISubnet, str | None]:
        """The private subnet of the chosen AZ. For a PrivateNetwork, AZ IDs are known and checked."""
        subnets = vpc.private_subnets or vpc.isolated_subnets
        check([(not subnets, "vpc has no private or isolated subnets; cluster nodes never get public IPs")])
        network = vpc.node.scope
        if isinstance(network, PrivateNetwork) and network.availability_zone_ids:
            ids = network.availability_zone_ids
            usable = [i for i in ids if region is None or i in spec.offered_azs(region)]
            wanted = az_id or (usable[0] if usable else None)
            check([
                (wanted is None, f"vpc: none of its AZs ({', '.join(ids)}) offers {spec.instance_type}; offered in "
                                 f"{region}: {', '.join(spec.offered_azs(region or '')) or 'none'}"),
                (wanted is not None and wanted not in ids,
                 f"availability_zone_id ({wanted}) is not one of the VPC's AZs ({', '.join(ids)})"),
            ])
            return subnets[ids.index(wanted)], wanted
        if region is not None:
            warn(self, "unverifiedAz", instance_type=spec.instance_type,
                 offered_azs=", ".join(spec.offered_azs(region)))
        return subnets[0], az_id
