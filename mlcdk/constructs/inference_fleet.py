"""InferenceFleet: an autoscaled, load-balanced model-serving fleet on Inferentia2, Trainium, GPU or CPU.

Two engines run the servers (see DESIGN.md, "Engines"):

- ``engine="ecs"`` (the default): Amazon ECS runs vLLM's OpenAI-compatible server in containers on the fleet's
  group (:mod:`mlcdk.constructs.ecs_engine`), for the model that ``model=ModelOptions(...)`` names, sized and
  checked by :mod:`mlcdk.constructs.model`. The group uses EC2 health checks only: ECS replaces a server that
  fails its readiness checks, never the node, so a slow model load cannot make the group churn.
- ``engine="nodes"``: the group's nodes run ``model_server_command`` as a systemd unit, behind ELB health checks
  with the ``scaling.warmup`` grace. Without a server command nothing would ever answer the health check, and ELB
  health checks would replace every node at the end of each grace period, forever: such a group uses EC2 health
  checks and a warning (``mlcdk:noModelServer``) says that nothing serves until a server is started on the nodes
  (for example from a custom AMI). It is not refused, because such an AMI is a legitimate way to serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs import fleet_load_balancer as balancing
from mlcdk.constructs import held_capacity
from mlcdk.constructs import fleet_parts
from mlcdk.constructs import security
from mlcdk.constructs.ecs_engine import EcsEngine, EcsEngineProps
from mlcdk.constructs.fleet_checks import DEFAULT_TARGETS, SCALING_SIGNALS
from mlcdk.constructs.fleet_options import FleetAlarmOptions, LoadBalancerOptions, ScalingOptions
from mlcdk.constructs.guardrail_options import GuardrailOptions
from mlcdk.constructs.guardrails import Guardrails, GuardrailsProps
from mlcdk.constructs.model import ModelOptions
from mlcdk.constructs.model_plan import ModelPlan
from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.node_group import LaunchTemplateProps, NodeGroup, NodeGroupMixin, NodeGroupProps
from mlcdk.constructs.node_group import machine_image as node_machine_image
from mlcdk.constructs.options import LOG_RETENTION, CapacityOptions, PurchaseOptions, StorageOptions
from mlcdk.constructs.plan_fleet import FLEET_DRAIN_MINUTES, FleetPlan, FleetRequest, plan_fleet
from mlcdk.constructs.plan_inputs import stack_environment
from mlcdk.constructs.user_data import NodeBoot, bootstrap, ecs_node
from mlcdk.constructs.validation import concrete
from mlcdk.constructs.warning_registry import warn_noted
from mlcdk.errors import ConfigurationError
from mlcdk.params import checked
from mlcdk.advice.results import Recommendation
from mlcdk.presets import metrics, model_server, workloads

__all__ = ["SCALING_SIGNALS", "FleetAlarmOptions", "InferenceFleet", "LoadBalancerOptions", "ModelOptions",
           "ScalingOptions"]

#: A regional AWS WAF (v2) web ACL, the kind an application load balancer can use (group 1: its region).
WEB_ACL_ARN = balancing.WEB_ACL_ARN
#: How long before EC2 ends a Capacity Block's instances the fleet scales in, so requests drain first.
FLEET_DRAIN = cdk.Duration.minutes(FLEET_DRAIN_MINUTES)
#: The grace of engine="nodes" when scaling.warmup is not given: mlcdk cannot know what the server command loads.
NODES_WARMUP = cdk.Duration.minutes(10)
#: Server logs are kept this many days (a CloudWatch Logs retention period).
SERVER_LOG_DAYS = 30


@dataclass(frozen=True)
class NodeParts:
    """What the fleet's node group is built on: the network, the AMI and boot script, the node role's policies (the
    group waits for them) and the nodes engine's server command."""

    vpc: ec2.IVpc
    subnets: list[ec2.ISubnet]
    machine_image: ec2.IMachineImage
    user_data: ec2.UserData
    policies: list[iam.Policy]
    server_command: str | None


def _seconds(duration: cdk.Duration | None) -> float | None:
    """A concrete Duration in seconds, for the plan; None when not given or a deploy-time token."""
    if duration is None:
        return None
    seconds = duration.to_seconds()
    return seconds if concrete(seconds) else None


@jsii.implements(ec2.IConnectable, iam.IGrantable)
class InferenceFleet(NodeGroupMixin, Construct):
    """Model servers in an Auto Scaling group behind a load balancer, with scaling, purchase options,
    the shared guardrails and fleet alarms. See the module docstring for the two engines.

    Precedence: security invariants, explicit arguments, the preset, defaults.

    :param instance_type: e.g. "inf2.xlarge". Overrides the preset's. Default: the preset's.
    :param preset: an inference preset name or WorkloadPreset. Default: none (then instance_type is required).
    :param engine: "ecs" (vLLM on Amazon ECS, for ``model``) or "nodes" (``model_server_command`` on the nodes).
        Default: "ecs".
    :param model: the model to serve and its server (see ModelOptions); required with engine="ecs". It must fit
        the instance type by the advisor's memory rule, or it is refused with the numbers.
    :param min_capacity: fewest servers (one per node). Default: the preset's, else 1.
    :param max_capacity: most servers. With engine="ecs" the group may hold one more node while a deployment
        starts a new server before it stops an old one. Default: the preset's, else max(min_capacity, 2).
    :param vpc: the VPC. Default: a PrivateNetwork in up to 3 AZ IDs that offer the type (at least 2).
    :param port: the model server's port on each node (with engine="ecs" the task's host port), and
        ``connections``' default port (so ``fleet.connections.allow_default_port_from(peer)`` admits ``peer`` to it).
        Default: 8080.
    :param health_check_path: the readiness path of the target group (and, with engine="ecs", of the container
        health check). Default: /health (vLLM answers it once the model is loaded).
    :param load_balancer: see LoadBalancerOptions. Default: internal ALB, HTTP on 80.
    :param scaling: see ScalingOptions. Default: target tracking on requests per target.
    :param purchase: see PurchaseOptions. Default: the preset's, else on-demand.
    :param capacity: an On-Demand Capacity Reservation, group or Capacity Block to launch into (see
        CapacityOptions). A target needs ``capacity.availability_zone_id``: the servers then run in that
        one AZ (a warning says so), while the load balancer keeps its AZs. Default: none.
    :param storage, machine_image, role, security_group, encryption_key, alarm_topic, alarm_emails,
        guardrails, removal_policy: as for TrainingCluster. With engine="ecs" the model cache is on the data
        volume when ``storage`` gives one (its size and throughput set the checks), else on the root volume.
    :param model_bucket: engine="nodes": a bucket the nodes may read model artifacts from (as
        ``grant_model_read``). Default: none.
    :param model_server_command: engine="nodes": a command run as a systemd service on each node after bootstrap.
        Default: none (EC2 health checks and the ``mlcdk:noModelServer`` warning).
    :param fleet_alarms: see FleetAlarmOptions.

    Attributes: ``load_balancer``, ``listener``, ``target_group``, ``load_balancer_security_group`` (None for
    an NLB), ``access_logs``, ``auto_scaling_group``, ``launch_template``, ``security_group``, ``role``,
    ``encryption_key``, ``alarm_topic``, ``guardrails``, ``engine`` and, with engine="ecs", ``ecs`` (the
    EcsEngine: ``cluster``, ``service``, ``task_definition``, ``task_role``...), ``model_plan``, ``grace`` and ``plan``
    (the resolved FleetPlan: mlcdk.constructs.plan_fleet). A
    ``LoadBalancerDnsName`` output carries the load balancer's DNS name.
    """

    #: What the advisor chose and why, on a fleet built by ``from_workload``; None otherwise.
    recommendation: Recommendation | None = None
    #: With engine="ecs": the ECS side of the fleet; None with engine="nodes".
    ecs: EcsEngine | None = None
    #: With engine="ecs": the model's plan (its workload, image, server arguments and start-up estimate).
    model_plan: ModelPlan | None = None

    @checked
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_type: str | None = None,
        preset: str | workloads.WorkloadPreset | None = None,
        engine: str = "ecs",
        model: ModelOptions | None = None,
        min_capacity: int | None = None,
        max_capacity: int | None = None,
        vpc: ec2.IVpc | None = None,
        port: int = 8080,
        health_check_path: str = "/health",
        load_balancer: LoadBalancerOptions | None = None,
        scaling: ScalingOptions | None = None,
        purchase: PurchaseOptions | None = None,
        capacity: CapacityOptions | None = None,
        storage: StorageOptions | None = None,
        machine_image: ec2.IMachineImage | None = None,
        role: iam.IRole | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        encryption_key: kms.IKey | None = None,
        model_bucket: s3.IBucket | None = None,
        model_server_command: str | None = None,
        alarm_topic: sns.ITopic | None = None,
        alarm_emails: Sequence[str] = (),
        user_data_commands: Sequence[str] = (),
        guardrails: GuardrailOptions | None = None,
        fleet_alarms: FleetAlarmOptions | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        scale = scaling or ScalingOptions()
        # 1. Plan: resolve and check everything, before any resource exists (mlcdk.constructs.plan_fleet).
        #: The resolved plan this fleet was built from (mlcdk.constructs.plan_fleet.FleetPlan).
        self.plan = plan = plan_fleet(FleetRequest(
            load_balancer=load_balancer or LoadBalancerOptions(), scaling=scale,
            fleet_alarms=fleet_alarms or FleetAlarmOptions(), instance_type=instance_type, preset=preset, engine=engine,
            model=model, min_capacity=min_capacity, max_capacity=max_capacity, port=port,
            health_check_path=health_check_path, purchase=purchase, capacity=capacity, storage=storage,
            model_server_command=model_server_command, alarm_emails=tuple(alarm_emails), guardrails=guardrails,
            warmup_seconds=_seconds(scale.warmup), model_bucket_given=model_bucket is not None,
            machine_image_given=machine_image is not None), stack_environment(self, vpc))
        self._record(plan, capacity, scale)
        # 2. Network and 3. security.
        vpc = vpc or PrivateNetwork(self, "Network", availability_zone_ids=plan.network_az_ids).vpc
        self._security(construct_id, vpc, (encryption_key, security_group, role, alarm_topic), plan.emails, removal_policy)
        policies = self._node_policies(model_bucket)
        # 4. Engine (ECS first: the nodes' user data names its cluster), nodes, load balancer.
        if plan.ecs:
            self.ecs = self._ecs_engine(plan, vpc, removal_policy)
            policies += self.ecs.node_policies(self.role)
        self._build_nodes(plan, self._node_parts(plan, vpc, policies, machine_image, tuple(user_data_commands),
                                                 model_server_command))
        self._load_balancer(plan, vpc, removal_policy)
        self._scaling(scale, plan.min_capacity, plan.max_capacity)
        # 5. Guardrails, with the fleet's own alarms.
        self._guardrails(plan, construct_id, capacity)
        self._capacity_block(capacity, construct_id)

    def _record(self, plan: FleetPlan, capacity: CapacityOptions | None, scale: ScalingOptions) -> None:
        """What the plan resolved, as the fleet's public attributes; the plan's warnings noted on the fleet."""
        warn_noted(self, plan.warnings)
        self.engine, self.spec, self.purchase, self.capacity = plan.engine, plan.spec, plan.purchase, capacity
        self.min_capacity, self.max_capacity, self.port, self.health_check_path = (
            plan.min_capacity, plan.max_capacity, plan.request.port, plan.request.health_check_path)
        self.model_plan = plan.model
        self.grace = scale.warmup or (cdk.Duration.seconds(plan.grace_seconds) if plan.model else NODES_WARMUP)

    def _node_policies(self, model_bucket: s3.IBucket | None) -> list[iam.Policy]:
        """The node role's policies: the agents', and read access to a model bucket the user brought."""
        policies = [security.agent_policy(self, "AgentPolicy", self.role)]
        if model_bucket is not None:
            policies.append(security.read_policy(self, "ModelPolicy", self.role, bucket=model_bucket))
        return policies

    def _node_parts(self, plan: FleetPlan, vpc: ec2.IVpc, policies: list[iam.Policy],
                    machine_image: ec2.IMachineImage | None, user_data_commands: tuple[str, ...],
                    server_command: str | None) -> NodeParts:
        """What the nodes are built from: the plan's subnets, the user data, the machine image and the policies."""
        user_data = self._user_data(plan, list(user_data_commands), server_command)
        return NodeParts(vpc, fleet_parts.node_subnets(vpc, plan.subnet_az_ids),
                         node_machine_image(machine_image, plan.ami), user_data, policies, server_command)

    def _load_balancer(self, plan: FleetPlan, vpc: ec2.IVpc, removal_policy: cdk.RemovalPolicy) -> None:
        """The load balancer the plan's options describe, with its certificate, forwarding to the nodes."""
        balancer = plan.request.load_balancer
        balancing.build(self, vpc, balancer, balancing.resolve_certificate(self, balancer.certificate), removal_policy)

    def _guardrails(self, plan: FleetPlan, label: str, capacity: CapacityOptions | None) -> None:
        """Alarms, budget, dashboard and cost, with the fleet's own alarms."""
        self.guardrails = Guardrails(self, "Guardrails", props=GuardrailsProps(
            source=self, spec=plan.spec, auto_scaling_group=self.auto_scaling_group, max_nodes=plan.max_capacity,
            purchase=plan.purchase, topic=self.alarm_topic, emails=plan.emails, options=plan.guardrails,
            thresholds=plan.thresholds, label=label, capacity=capacity,
            extra_alarms=lambda g: fleet_parts.fleet_alarms(self, g, plan.request.fleet_alarms)))

    @classmethod
    def from_workload(cls, scope: Construct, construct_id: str, *, workload=None, model: ModelOptions | None = None,
                      regions: Sequence[str] | str = (), **kwargs) -> InferenceFleet:
        """The fleet whose instance type the advisor ranks first. ``workload``: an inference
        ``mlcdk.presets.sizing.Workload``; or ``model``: the ModelOptions to serve, from which the workload is
        derived (its architecture or parameters, precision, context and concurrent sequences), so the advisor
        sizes exactly what the server will run. Both: the workload picks the type and the model is served on it.
        ``regions``: the regions to consider for a model in an env-agnostic stack (the stack's own region otherwise).
        Other keyword arguments pass through; ``recommendation`` on the result explains the choice."""
        from mlcdk.constructs.from_workload import recommend_for_stack, workload_for_model

        if workload is None and model is None:
            raise ConfigurationError("InferenceFleet.from_workload needs workload= (a Workload) or model= (ModelOptions)")
        if workload is None:
            workload = workload_for_model(model, regions=regions)
        top, purchase = recommend_for_stack(scope, workload, training=False)
        kwargs.setdefault("purchase", purchase)
        if model is not None:
            kwargs["model"] = model
        fleet = cls(scope, construct_id, instance_type=top.instance_type, **kwargs)
        fleet.recommendation = top
        return fleet

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """Who serves the model: with engine="ecs" the task role (the containers' only identity), else the node role."""
        return self.ecs.task_role.grant_principal if self.ecs is not None else self.role.grant_principal

    def metric_queue_depth(self, **options) -> cloudwatch.IMetric:
        """vLLM's waiting requests per server (``vllm:num_requests_waiting``, scraped by each node's CloudWatch agent
        into namespace CWAgent with the fleet's ECS cluster as dimension); engine="ecs" only. ``options``: any of
        METRIC_OPTIONS. Default: Average over 1 minute (the mean over the servers)."""
        if self.ecs is None:
            raise ConfigurationError("metric_queue_depth: the queue depth is scraped from vLLM, which engine='ecs' runs")
        return cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=metrics.SERVER_METRICS[0],
                                 dimensions_map={metrics.SERVER_DIMENSION: self.ecs.cluster.cluster_name},
                                 **self._options(options, self.METRIC_OPTIONS, period=cdk.Duration.minutes(1),
                                                 statistic="Average"))

    # ----------------------------------------------------------------------------------------
    # Steps of the constructor
    # ----------------------------------------------------------------------------------------

    def _security(self, construct_id: str, vpc: ec2.IVpc, brought: tuple, emails: tuple[str, ...],
                  removal_policy: cdk.RemovalPolicy) -> None:
        """The key, node security group, node role and alarm topic: what the user ``brought`` (key, group, role,
        topic; None where not), else secure defaults."""
        encryption_key, security_group, role, alarm_topic = brought
        self.encryption_key = encryption_key or security.encryption_key(
            self, "Key", description=f"{construct_id}: volumes, logs and notifications", removal_policy=removal_policy)
        self.security_group = security_group or ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=True,
            description=f"{construct_id} model servers: traffic from the load balancer only, no SSH")
        self.role = role or security.node_role(self, "Role", description=f"{construct_id} model servers")
        self.alarm_topic = alarm_topic or security.alarm_topic(self, "AlarmTopic", key=self.encryption_key, emails=emails)

    def _ecs_engine(self, plan: FleetPlan, vpc: ec2.IVpc, removal_policy: cdk.RemovalPolicy) -> EcsEngine:
        return EcsEngine(self, "Serving", props=EcsEngineProps(
            fleet=plan, vpc=vpc, key=self.encryption_key, grace=self.grace,
            log_retention=getattr(logs.RetentionDays, LOG_RETENTION[SERVER_LOG_DAYS]), removal_policy=removal_policy,
            label=self.node.id))

    def _user_data(self, plan: FleetPlan, extra: list[str], server_command: str | None) -> ec2.UserData:
        serving_lines, prometheus = [], None
        if self.ecs is not None:
            serving_lines = ecs_node(self.ecs.cluster.cluster_name, spot=plan.purchase.uses_spot,
                                     warm_pool=plan.scaling.warm_pool, cache_path=plan.cache.host_path)
            prometheus = metrics.PrometheusScrape(self.port, model_server.facts().metrics_path, self.ecs.cluster.cluster_name,
                                                  self.ecs.metrics_log_group.log_group_name)
        if server_command:
            extra += fleet_parts.model_server_service(server_command)
        user_data = ec2.UserData.for_linux()
        storage = plan.storage
        user_data.add_commands(*bootstrap(plan.spec, NodeBoot(
            efa=False, data_mount_point=storage.data_mount_point if storage.data_volume_size_gib else None, extra=extra,
            prometheus=prometheus, serving=serving_lines)))
        return user_data

    def _build_nodes(self, plan: FleetPlan, parts: NodeParts) -> None:
        """The group: with engine="ecs", EC2 health checks only (ECS replaces servers, not nodes), no rolling
        replacement (a model or image change is a task revision), one spare node for deployments, and IMDS hop
        limit 1 (containers cannot reach the node role); with engine="nodes", ELB health checks after the grace when
        a server command runs, else EC2 health checks (the plan's noModelServer warning)."""
        ecs_engine, low, high = plan.ecs, plan.min_capacity, plan.max_capacity
        if parts.server_command and not ecs_engine:
            checks = autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB], grace_period=self.grace)
        else:  # with engine="ecs" nothing model-specific on the group: a model change must not touch it
            checks = autoscaling.HealthChecks.ec2()
        update = None if ecs_engine else autoscaling.UpdatePolicy.rolling_update(
            min_instances_in_service=low, max_batch_size=1, pause_time=self.grace, wait_on_resource_signals=False)
        group = NodeGroup(self, "NodeGroup", props=NodeGroupProps(
            template=LaunchTemplateProps(
                spec=plan.spec, role=self.role, user_data=parts.user_data, security_group=self.security_group,
                key=self.encryption_key, machine_image=parts.machine_image, storage=plan.storage,
                root_device_name=plan.root_device_name, efa=False, cluster_placement=False,
                imds_hop_limit=1 if ecs_engine else 2),
            min_capacity=low, max_capacity=high + 1 if ecs_engine else high, desired_capacity=None,
            vpc=parts.vpc, subnets=ec2.SubnetSelection(subnets=parts.subnets), purchase=plan.purchase,
            fallback_instance_types=plan.fallbacks, notification_topic=self.alarm_topic, update_policy=update,
            health_checks=checks, instance_warmup=None if ecs_engine else self.grace))
        if ecs_engine:
            self.ecs.run_on(group.auto_scaling_group, None if fleet_parts.scales(low, high) else low)
        elif not parts.server_command:
            acknowledge(group.auto_scaling_group, "NIST.800.53.R5-AutoScalingGroupELBHealthCheckRequired",
                        "no model server command runs on the nodes, so nothing answers the load balancer's health "
                        "check: ELB health checks would replace every node at the end of each grace period, forever "
                        "(warned at synth as mlcdk:noModelServer)")
        self.launch_template, self.auto_scaling_group = group.launch_template, group.auto_scaling_group
        held_capacity.apply(self.launch_template, plan.capacity)
        for policy in parts.policies:
            self.auto_scaling_group.node.add_dependency(policy)
        self.instance_types = group.instance_types
        self._connections = ec2.Connections(security_groups=[self.security_group], default_port=ec2.Port.tcp(plan.port))
        self._model_grants = 0
        if plan.scaling.warm_pool is True:  # a plain on-demand group of one type (validate_warm_pool)
            self.auto_scaling_group.add_warm_pool(min_size=low, pool_state=autoscaling.PoolState.STOPPED)

    def _scaling(self, scale: ScalingOptions, low, high) -> None:
        """Target tracking on the chosen signal: of the service's task count with engine="ecs" (ECS then sizes the
        group), of the group with engine="nodes". None for a fixed-size fleet (target tracking needs max > min)."""
        if self.ecs is not None:
            self.ecs.attach(self.target_group)
        if not fleet_parts.scales(low, high):
            cdk.Annotations.of(self).add_info(f"min_capacity = max_capacity = {low}: a fixed-size fleet, no scaling policy")
            return
        target = scale.target or DEFAULT_TARGETS[scale.signal]
        if self.ecs is not None:
            tasks = self.ecs.service.auto_scale_task_count(min_capacity=low, max_capacity=high)
            if scale.signal == "requests":
                tasks.scale_on_request_count("ScaleOnRequests", requests_per_target=int(target),
                                             target_group=self.target_group)
            else:
                tasks.scale_to_track_custom_metric(
                    f"ScaleOn{scale.signal.capitalize()}", metric=self._scaling_metric(scale.signal), target_value=target)
            self._tasks = tasks
        elif scale.signal == "requests":
            self.auto_scaling_group.scale_on_request_count("ScaleOnRequests", target_requests_per_minute=int(target))
        elif scale.signal == "accelerator":
            self.auto_scaling_group.scale_to_track_metric(
                "ScaleOnAccelerator", metric=self._scaling_metric("accelerator"), target_value=target)
        else:
            self.auto_scaling_group.scale_on_cpu_utilization("ScaleOnCpu", target_utilization_percent=target)

    def _scaling_metric(self, signal: str) -> cloudwatch.IMetric:
        one_minute = cdk.Duration.minutes(1)
        if signal == "queue":
            return self.metric_queue_depth(period=one_minute)
        if signal == "accelerator":
            return self.metric_accelerator_utilization(period=one_minute)
        return self.metric_cpu_utilization(period=one_minute)

    def _capacity_block(self, capacity: CapacityOptions | None, label: str) -> None:
        """A Capacity Block's expiration warning, and the scale-in before its end: of the service with engine="ecs"
        (the capacity provider then empties the group), of the group with engine="nodes"."""
        tasks = getattr(self, "_tasks", None)
        on_end = None
        if self.ecs is not None:
            def on_end(stop) -> None:
                from aws_cdk import aws_applicationautoscaling as appscaling

                scalable = tasks or self.ecs.service.auto_scale_task_count(min_capacity=self.min_capacity,
                                                                          max_capacity=self.max_capacity)
                scalable.scale_on_schedule("CapacityBlockEnd", schedule=appscaling.Schedule.at(stop),
                                           min_capacity=0, max_capacity=0)
        held_capacity.events_and_schedule(self, capacity, held_capacity.BlockEnd(
            topic=self.alarm_topic, label=label, grace=FLEET_DRAIN,
            auto_scaling_group=None if self.ecs else self.auto_scaling_group, on_block_end=on_end))

    def grant_model_read(self, bucket: s3.IBucket) -> iam.Policy:
        """Let the model servers read objects from ``bucket``: s3:GetObject on its objects, s3:ListBucket and
        s3:GetBucketLocation on the bucket, and kms:Decrypt and kms:DescribeKey on its key if it has one, in a
        policy of its own ("ModelReadPolicy<n>") whose one cdk-nag wildcard finding (the objects) is acknowledged.

        A convenience, narrower than CDK's own direction, which also works because the fleet is an
        ``iam.IGrantable``: ``bucket.grant_read(fleet)`` grants s3:GetObject*, s3:GetBucket*, s3:List* (and
        kms:Decrypt on the bucket's key) to the node role's default policy, and leaves its cdk-nag wildcard
        findings to the app."""
        self._model_grants += 1
        role = self.ecs.task_role if self.ecs is not None else self.role
        return security.read_policy(self, f"ModelReadPolicy{self._model_grants}", role, bucket=bucket)

