"""InferenceFleet: an autoscaled, load-balanced model-serving fleet on Inferentia2, GPU or CPU."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aws_cdk as cdk
import jsii
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs import capacity as held_capacity
from mlcdk.constructs import fleet_load_balancer as balancing
from mlcdk.constructs import security
from mlcdk.constructs.guardrails import GuardrailOptions, Guardrails, validate_guardrail_options
from mlcdk.constructs.limits import validate_storage
from mlcdk.constructs.network import PrivateNetwork, network_az_ids
from mlcdk.constructs.node_group import (
    NodeGroup, NodeGroupMixin, resolve_machine_image, resolve_preset, select_fallbacks,
)
from mlcdk.constructs.options import CapacityOptions, PurchaseOptions, StorageOptions
from mlcdk.constructs.user_data import bootstrap
from mlcdk.constructs.validation import check, concrete
from mlcdk.params import checked
from mlcdk.presets import metrics, workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.settings import MAX_CAPACITY, parse_emails

if TYPE_CHECKING:
    from mlcdk.presets.advisor import Recommendation

SCALING_SIGNALS = ("requests", "accelerator", "cpu")


#: A regional AWS WAF (v2) web ACL, the kind an application load balancer can use (group 1: its region).
WEB_ACL_ARN = balancing.WEB_ACL_ARN


@dataclass(frozen=True)
class LoadBalancerOptions:
    """The fleet's load balancer.

    :param kind: "application" (HTTP, the default) or "network" (TCP/TLS, for gRPC or raw TCP).
    :param internet_facing: put it in public subnets. An internet-facing fleet refuses a ``port`` that
        administration services listen on (SSH, RDP, databases, etcd, the kubelet...: see
        ``fleet_load_balancer.SENSITIVE_PORTS``), and warns (``mlcdk:publicWithoutWaf``) without a web ACL.
        Default: internal (private subnets).
    :param certificate: an ACM certificate (``acm.ICertificate``) or its ARN (imported as "Certificate"), in
        the stack's region; the listener is HTTPS (ALB) or TLS (NLB) on 443. Default: none, so plain HTTP/TCP
        on 80, which is allowed only for internal load balancers.
    :param allow_public_without_tls: permit an internet-facing listener without a certificate (warned).
        True or False only.
    :param web_acl_arn: a regional AWS WAF web ACL in the stack's region, associated with an application load
        balancer. Default: none; an internal ALB's NIST ``ALBWAFEnabled`` finding is acknowledged (it is
        reachable only from the VPC), an internet-facing one's is left for the app's owner to fix or
        acknowledge, and a warning says so.
    :param deletion_protection: refuse to delete the load balancer (and so the stack) until this is turned
        off again. Default: off; the load balancer holds no data and a deploy recreates it.
    """

    kind: str = "application"
    internet_facing: bool = False
    certificate: acm.ICertificate | str | None = None
    allow_public_without_tls: bool = False
    web_acl_arn: str | None = None
    deletion_protection: bool = False


@dataclass(frozen=True)
class ScalingOptions:
    """How the fleet scales between min_capacity and max_capacity.

    :param signal: "requests" (ALB requests per target, the default), "accelerator" (accelerator
        utilization from the guardrails metrics) or "cpu".
    :param target: the target value, a finite number above 0: requests per target per minute (default 60),
        or percent up to 100 (default 70 for accelerator, 60 for CPU).
    :param warmup: how long a new instance needs to load its model: ELB health-check grace and the
        group's default instance warm-up. Default: 10 minutes.
    :param warm_pool: keep stopped, pre-initialized instances for slow model loads. EC2 Auto Scaling has no
        warm pools for mixed-instances groups, so this is refused (ConfigurationError) when the group would be
        one: a spot or mixed purchase option, or fallback types, the preset's included (all inference presets
        bring some); pass ``purchase=PurchaseOptions(fallback_instance_types=())`` to run the one type on
        demand. Default: off.
    """

    signal: str = "requests"
    target: float | None = None
    warmup: cdk.Duration | None = None
    warm_pool: bool = False


@dataclass(frozen=True)
class FleetAlarmOptions:
    """Fleet alarms on top of the shared guardrails (ALB only, except unhealthy hosts and max capacity).

    :param p99_latency_seconds: p99 target response time threshold, a finite number of seconds above 0.
        Default: 10 s.
    :param error_rate_percent: 5xx responses (target and load balancer) as a percent of requests, above 0
        and at most 100. Default: 5.
    """

    p99_latency_seconds: float = 10
    error_rate_percent: float = 5


#: How long before EC2 ends a Capacity Block's instances the fleet scales in, so requests drain first.
FLEET_DRAIN = cdk.Duration.minutes(10)


@jsii.implements(ec2.IConnectable, iam.IGrantable)
class InferenceFleet(NodeGroupMixin, Construct):
    """Model servers in an Auto Scaling group behind a load balancer, with scaling, purchase options,
    the shared guardrails and fleet alarms.

    Precedence: security invariants, explicit arguments, the preset, defaults.

    :param instance_type: e.g. "inf2.xlarge". Overrides the preset's. Default: the preset's.
    :param preset: an inference preset name or WorkloadPreset. Default: none (then instance_type is required).
    :param min_capacity: fewest instances. Default: the preset's, else 1.
    :param max_capacity: most instances. Default: the preset's, else max(min_capacity, 2).
    :param vpc: the VPC. Default: a PrivateNetwork in up to 3 AZ IDs that offer the type (at least 2).
    :param port: the model server's port on each node, and ``connections``' default port (so
        ``fleet.connections.allow_default_port_from(peer)`` admits ``peer`` to it). Default: 8080.
    :param health_check_path: the target group health check. Default: /health.
    :param load_balancer: see LoadBalancerOptions. Default: internal ALB, HTTP on 80.
    :param scaling: see ScalingOptions. Default: target tracking on requests per target.
    :param purchase: see PurchaseOptions. Default: the preset's, else on-demand.
    :param capacity: an On-Demand Capacity Reservation, group or Capacity Block to launch into (see
        CapacityOptions). A target needs ``capacity.availability_zone_id``: the servers then run in that
        one AZ (a warning says so), while the load balancer keeps its AZs. Default: none.
    :param storage, machine_image, role, security_group, encryption_key, alarm_topic, alarm_emails,
        guardrails, removal_policy: as for TrainingCluster.
    :param model_bucket: a bucket the nodes may read model artifacts from (as ``grant_model_read``).
        Default: none; ``bucket.grant_read(fleet)`` also works, the fleet being an ``iam.IGrantable``.
    :param model_server_command: a command run as a systemd service on each node after bootstrap.
        Default: none.
    :param fleet_alarms: see FleetAlarmOptions.

    Attributes: ``load_balancer``, ``listener``, ``target_group``, ``load_balancer_security_group`` (None for
    an NLB), ``access_logs``, ``auto_scaling_group``, ``launch_template``, ``security_group``, ``role``,
    ``encryption_key``, ``alarm_topic``, ``guardrails``. A ``LoadBalancerDnsName`` output carries the load
    balancer's DNS name.
    """

    #: What the advisor chose and why, on a fleet built by ``from_workload``; None otherwise.
    recommendation: Recommendation | None = None

    @checked
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance_type: str | None = None,
        preset: str | workloads.WorkloadPreset | None = None,
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
        stack = cdk.Stack.of(self)
        region = stack.region if concrete(stack.region) else None
        preset, spec, purchase = resolve_preset("InferenceFleet", preset, instance_type, purchase, inference=True)
        low = min_capacity if min_capacity is not None else (preset.min_capacity if preset else 1)
        high = max_capacity if max_capacity is not None else (preset.max_capacity if preset else max(low, 2))
        balancer = load_balancer or LoadBalancerOptions()
        scale = scaling or ScalingOptions()
        storage = storage or StorageOptions()
        emails = parse_emails(list(alarm_emails), "alarm_emails")
        alarms = fleet_alarms or FleetAlarmOptions()
        self._validate(spec, low, high, port, health_check_path, balancer, scale, purchase, alarms, region)
        validate_storage(storage)
        thresholds = validate_guardrail_options(guardrails or GuardrailOptions(), preset.alarms if preset else None)
        held_capacity.validate(capacity, spec=spec, purchase=purchase, region=region, az_id=None, placement_group=None,
                               account=stack.account if concrete(stack.account) else None)
        check([(capacity is not None and capacity.targeted and capacity.availability_zone_id is None,
                "capacity: a fleet with a reservation target needs capacity.availability_zone_id (the reservation's "
                "AZ ID): its servers must launch where the reservation is"),
               (capacity is not None and capacity.targeted and scale.warm_pool,
                "scaling.warm_pool with a capacity reservation: a stopped warm instance gives its reserved slot back "
                "and may not get it again; drop warm_pool")])
        fallbacks, dropped = select_fallbacks(spec, purchase, preset, same_accelerator_model=False, region=region)
        if dropped:
            cdk.Annotations.of(self).add_warning_v2(
                "mlcdk:presetFallbacksDropped", "the preset's fallback types not used: " + "; ".join(
                    f"{name} ({why})" for name, why in dropped))
        if capacity is not None and capacity.targeted and fallbacks:
            cdk.Annotations.of(self).add_warning_v2(
                "mlcdk:capacityFallbacksUnused", f"the preset's fallback types ({', '.join(fallbacks)}) are not used: "
                f"the capacity reservation holds {spec.instance_type} only")
            fallbacks = ()
        self._check_warm_pool(scale, purchase, fallbacks)
        if spec.maximum_network_cards > 1:
            cdk.Annotations.of(self).add_warning_v2(
                "mlcdk:trainingTypeForServing",
                f"{spec.instance_type} is built for multi-node training ({spec.maximum_network_cards} network cards, "
                f"{spec.maximum_efa_interfaces} EFA interfaces) that serving does not use; a single-card type "
                "(inf2, g6e, g5) usually costs less per request")
        image, root_device = resolve_machine_image(spec, machine_image, storage.root_device_name)

        # Network: private subnets in at least two AZs that offer the type (one of them the reservation's).
        reservation_az = held_capacity.az_for(capacity, None)
        if vpc is None:
            vpc = PrivateNetwork(self, "Network", availability_zone_ids=network_az_ids(spec, region, reservation_az)).vpc
        node_subnets = self._node_subnets(vpc, spec, region, reservation_az)

        # Security.
        self.encryption_key = encryption_key or security.encryption_key(
            self, "Key", description=f"{construct_id}: volumes and notifications", removal_policy=removal_policy)
        self.security_group = security_group or ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=True,
            description=f"{construct_id} model servers: traffic from the load balancer only, no SSH")
        self.role = role or security.node_role(self, "Role", description=f"{construct_id} model servers")
        policies = [security.agent_policy(self, "AgentPolicy", self.role)]
        if model_bucket is not None:
            policies.append(security.read_policy(self, "ModelPolicy", self.role, bucket=model_bucket))
        self.alarm_topic = alarm_topic or security.alarm_topic(self, "AlarmTopic", key=self.encryption_key, emails=emails)

        # Nodes.
        extra = list(user_data_commands)
        if model_server_command:
            extra += _model_server_service(model_server_command)
        user_data = ec2.UserData.for_linux()
        user_data.add_commands(*bootstrap(spec, efa=False, data_mount_point=storage.data_mount_point
                                          if storage.data_volume_size_gib else None, extra=extra))
        warmup = scale.warmup or cdk.Duration.minutes(10)
        group = NodeGroup(
            self, "NodeGroup", spec=spec, min_capacity=low, max_capacity=high, desired_capacity=None,
            update_policy=autoscaling.UpdatePolicy.rolling_update(min_instances_in_service=low, max_batch_size=1,
                                                                  pause_time=warmup, wait_on_resource_signals=False),
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB], grace_period=warmup), instance_warmup=warmup,
            vpc=vpc, subnets=ec2.SubnetSelection(subnets=node_subnets), security_group=self.security_group,
            role=self.role, key=self.encryption_key, machine_image=image, user_data=user_data, storage=storage,
            root_device_name=root_device, efa=False, cluster_placement=False, purchase=purchase,
            fallback_instance_types=fallbacks, notification_topic=self.alarm_topic)
        self.launch_template, self.auto_scaling_group = group.launch_template, group.auto_scaling_group
        held_capacity.apply(self.launch_template, capacity)
        self.capacity = capacity
        for policy in policies:
            self.auto_scaling_group.node.add_dependency(policy)
        self.spec, self.purchase, self.instance_types = spec, purchase, group.instance_types
        self.min_capacity, self.max_capacity, self.port = low, high, port
        self._connections = ec2.Connections(security_groups=[self.security_group], default_port=ec2.Port.tcp(port))
        self._model_grants = 0
        if scale.warm_pool is True:  # a plain on-demand group of one type (_check_warm_pool)
            self.auto_scaling_group.add_warm_pool(min_size=low, pool_state=autoscaling.PoolState.STOPPED)

        # Load balancer, listener, target group.
        balancing.build(self, vpc, balancer, balancing.resolve_certificate(self, balancer.certificate), port=port,
                        health_check_path=health_check_path, removal_policy=removal_policy)

        # Scaling (none for a fixed-size fleet: target tracking needs max > min).
        if concrete(low) and concrete(high) and low == high:
            cdk.Annotations.of(self).add_info(f"min_capacity = max_capacity = {low}: a fixed-size fleet, no scaling policy")
        elif scale.signal == "requests":
            self.auto_scaling_group.scale_on_request_count(
                "ScaleOnRequests", target_requests_per_minute=int(scale.target or 60))
        elif scale.signal == "accelerator":
            self.auto_scaling_group.scale_to_track_metric(
                "ScaleOnAccelerator", metric=self.metric_accelerator_utilization(period=cdk.Duration.minutes(1)),
                target_value=scale.target or 70)
        else:
            self.auto_scaling_group.scale_on_cpu_utilization("ScaleOnCpu", target_utilization_percent=scale.target or 60)

        # Guardrails, with the fleet's own alarms.
        self.guardrails = Guardrails(
            self, "Guardrails", source=self, spec=spec, auto_scaling_group=self.auto_scaling_group, max_nodes=high,
            purchase=purchase, topic=self.alarm_topic, emails=emails, options=guardrails or GuardrailOptions(),
            thresholds=thresholds, label=construct_id,
            extra_alarms=lambda g: self._fleet_alarms(g, alarms), capacity=capacity)
        held_capacity.events_and_schedule(self, capacity, topic=self.alarm_topic, label=construct_id,
                                          grace=FLEET_DRAIN, auto_scaling_group=self.auto_scaling_group, engine="nodes")

    @classmethod
    def from_workload(cls, scope: Construct, construct_id: str, *, workload, **kwargs) -> InferenceFleet:
        """The fleet whose instance type the advisor ranks first for ``workload`` (an inference
        ``mlcdk.presets.sizing.Workload``) in the stack's region. Other keyword arguments pass through;
        ``recommendation`` on the result explains the choice."""
        from mlcdk.constructs.from_workload import recommend_for_stack

        top, purchase = recommend_for_stack(scope, workload, training=False)
        kwargs.setdefault("purchase", purchase)
        fleet = cls(scope, construct_id, instance_type=top.instance_type, **kwargs)
        fleet.recommendation = top
        return fleet

    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _validate(spec: InstanceSpec, low, high, port, path, balancer: LoadBalancerOptions, scale: ScalingOptions,
                  purchase: PurchaseOptions, alarms: FleetAlarmOptions, region: str | None) -> None:
        # Types (bools, finite numbers, Durations) were checked by mlcdk.params; these are ranges and rules.
        check(balancing.certificate_problems(balancer.certificate, region))
        rows = []
        if region is not None:
            offered = spec.offered_azs(region)
            rows += [
                (not offered, f"instance_type: {spec.instance_type} is not offered in {region}; it is offered in "
                              f"{', '.join(spec.regions)}"),
                (len(offered) == 1, f"instance_type: {spec.instance_type} is offered in only one AZ of {region} "
                                    f"({offered[0] if offered else ''}); a fleet needs two for availability"),
            ]
        if concrete(low) and concrete(high):
            rows += [
                (low < 0, f"min_capacity ({low!r}) must be a whole number of at least 0"),
                (not 1 <= high <= MAX_CAPACITY, f"max_capacity ({high!r}) must be a whole number from 1 to {MAX_CAPACITY}"),
                (low > high,
                 f"min_capacity ({low}) must not exceed max_capacity ({high})"),
            ]
        acl_region = balancing.arn_region(WEB_ACL_ARN, balancer.web_acl_arn)
        percent = scale.signal in ("accelerator", "cpu")
        rows += [
            (not 1 <= port <= 65535, f"port ({port!r}) must be from 1 to 65535"),
            (not path.startswith("/"), f"health_check_path ({path!r}) must start with '/'"),
            (balancer.kind not in ("application", "network"),
             f"load_balancer.kind ({balancer.kind!r}) must be application or network"),
            balancing.sensitive_port_row(port, balancer),
            (balancer.internet_facing and balancer.certificate is None and not balancer.allow_public_without_tls,
             "load_balancer: an internet-facing fleet needs a certificate (HTTPS/TLS); set "
             "allow_public_without_tls=True to serve plain HTTP/TCP to the internet"),
            (balancer.web_acl_arn is not None and balancer.kind != "application",
             "load_balancer.web_acl_arn: AWS WAF protects application load balancers only; use kind='application'"),
            (balancer.web_acl_arn is not None and not (isinstance(balancer.web_acl_arn, str) and (
                not concrete(balancer.web_acl_arn) or WEB_ACL_ARN.fullmatch(balancer.web_acl_arn))),
             f"load_balancer.web_acl_arn ({balancer.web_acl_arn!r}) must be a regional WAFv2 web ACL ARN "
             "(arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)"),
            (region is not None and acl_region is not None and acl_region != region,
             f"load_balancer.web_acl_arn ({balancer.web_acl_arn}) is in {acl_region}; a load balancer in {region} "
             f"can use only a web ACL of {region}"),
            (scale.signal not in SCALING_SIGNALS, f"scaling.signal ({scale.signal!r}) must be one of {', '.join(SCALING_SIGNALS)}"),
            (scale.signal == "requests" and balancer.kind == "network",
             "scaling.signal ('requests') needs an application load balancer; use 'accelerator' or 'cpu' with a network one"),
            (scale.signal == "accelerator" and metrics.metric_names(spec.accelerator.kind if spec.accelerator else None) is None,
             f"scaling.signal ('accelerator'): mlcdk publishes no accelerator metrics for {spec.instance_type}; use 'cpu'"),
            (scale.target is not None and concrete(scale.target) and not (0 < scale.target <= (100 if percent else math.inf)),
             f"scaling.target ({scale.target}) must be positive" + (f" and at most 100 (percent, signal {scale.signal!r})"
                                                                     if percent else "")),
            (concrete(alarms.p99_latency_seconds) and not alarms.p99_latency_seconds > 0,
             f"fleet_alarms.p99_latency_seconds ({alarms.p99_latency_seconds}) must be above 0"),
            (concrete(alarms.error_rate_percent) and not 0 < alarms.error_rate_percent <= 100,
             f"fleet_alarms.error_rate_percent ({alarms.error_rate_percent}) must be above 0 and at most 100"),
        ]
        check(rows)

    def _check_warm_pool(self, scale: ScalingOptions, purchase: PurchaseOptions, fallbacks: tuple[str, ...]) -> None:
        """EC2 Auto Scaling refuses a warm pool on a group with a mixed instances policy, which NodeGroup builds
        for spot (or mixed) purchases and for more than one type (EC2 Auto Scaling User Guide, "Warm pools",
        limitations). The fallbacks are the ones the group will really get: explicit, or the preset's."""
        source = "from purchase.fallback_instance_types" if purchase.fallback_instance_types is not None else "the preset's"
        check([(scale.warm_pool and purchase.uses_spot,
                f"scaling.warm_pool cannot be used with purchase option {purchase.option!r}: spot makes a mixed-instances "
                "group, and EC2 Auto Scaling has no warm pools for mixed-instances groups; use purchase option "
                "'on-demand' without fallback types"),
               (scale.warm_pool and bool(fallbacks),
                f"scaling.warm_pool cannot be used with fallback instance types ({', '.join(fallbacks)}, {source}): "
                "several types "
                "make a mixed-instances group, and EC2 Auto Scaling has no warm pools for mixed-instances groups; pass "
                "purchase=PurchaseOptions(fallback_instance_types=()) to run one type on demand")])

    def _node_subnets(self, vpc: ec2.IVpc, spec: InstanceSpec, region: str | None,
                      reservation_az: str | None = None) -> list[ec2.ISubnet]:
        subnets = vpc.private_subnets
        check([(not subnets, "vpc has no private subnets; model servers never get public IPs")])
        network = vpc.node.scope
        if reservation_az is not None:  # a reservation lives in one AZ: the servers go there
            ids = network.availability_zone_ids if isinstance(network, PrivateNetwork) else ()
            check([(not ids, "capacity.availability_zone_id needs a VPC from PrivateNetwork (its subnets are pinned "
                             "by AZ ID), so the servers can be placed in the reservation's AZ"),
                   (bool(ids) and reservation_az not in ids,
                    f"capacity.availability_zone_id ({reservation_az}) is not one of the VPC's AZs ({', '.join(ids)})")])
            cdk.Annotations.of(self).add_warning_v2(
                "mlcdk:singleAzFleet", f"the model servers run in one AZ ({reservation_az}), the reservation's: an AZ "
                "outage stops the fleet; the load balancer keeps its AZs")
            return [subnets[ids.index(reservation_az)]]
        if isinstance(network, PrivateNetwork) and network.availability_zone_ids and region:
            usable = [s for az, s in zip(network.availability_zone_ids, subnets) if az in spec.offered_azs(region)]
            check([(len(usable) < 2, f"vpc: fewer than two of its AZs ({', '.join(network.availability_zone_ids)}) "
                                     f"offer {spec.instance_type}")])
            return usable
        return list(subnets)

    def _fleet_alarms(self, guardrails: Guardrails, options: FleetAlarmOptions) -> None:
        label = self.node.id
        group_metrics = self.target_group.metrics
        unhealthy = (group_metrics.unhealthy_host_count if isinstance(self.target_group, elbv2.ApplicationTargetGroup)
                     else group_metrics.un_healthy_host_count)(period=cdk.Duration.minutes(1))
        guardrails.add_alarm("UnhealthyHosts", unhealthy,
                             0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=5,
                             description=f"{label}: unhealthy model servers for 5 minutes")
        if concrete(self.max_capacity):
            guardrails.add_alarm("AtMaxCapacity", self.metric_in_service_instances(period=cdk.Duration.minutes(5)),
                                 self.max_capacity, cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                 periods=6, description=f"{label}: pinned at max_capacity ({self.max_capacity}) for 30 "
                                 "minutes; the fleet needs more room")
        if isinstance(self.target_group, elbv2.ApplicationTargetGroup):
            guardrails.add_alarm("LatencyP99", self.target_group.metrics.target_response_time(
                statistic="p99", period=cdk.Duration.minutes(5)), options.p99_latency_seconds,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                description=f"{label}: p99 response time above {options.p99_latency_seconds} s")
            lb = self.load_balancer.metrics
            errors = cloudwatch.MathExpression(
                expression="100 * (FILL(target5xx, 0) + FILL(lb5xx, 0)) / requests",
                using_metrics={"target5xx": self.target_group.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=cdk.Duration.minutes(5)),
                    "lb5xx": lb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=cdk.Duration.minutes(5)),
                    "requests": lb.request_count(period=cdk.Duration.minutes(5))},
                label="5xx rate (%)", period=cdk.Duration.minutes(5))
            guardrails.add_alarm("ErrorRate", errors, options.error_rate_percent,
                                 cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                                 description=f"{label}: 5xx responses above {options.error_rate_percent}% of requests")

    def grant_model_read(self, bucket: s3.IBucket) -> iam.Policy:
        """Let the model servers read objects from ``bucket``: s3:GetObject on its objects, s3:ListBucket and
        s3:GetBucketLocation on the bucket, and kms:Decrypt and kms:DescribeKey on its key if it has one, in a
        policy of its own ("ModelReadPolicy<n>") whose one cdk-nag wildcard finding (the objects) is acknowledged.

        A convenience, narrower than CDK's own direction, which also works because the fleet is an
        ``iam.IGrantable``: ``bucket.grant_read(fleet)`` grants s3:GetObject*, s3:GetBucket*, s3:List* (and
        kms:Decrypt on the bucket's key) to the node role's default policy, and leaves its cdk-nag wildcard
        findings to the app."""
        self._model_grants += 1
        return security.read_policy(self, f"ModelReadPolicy{self._model_grants}", self.role, bucket=bucket)


def _model_server_service(command: str) -> list[str]:
    unit = "\n".join(["[Unit]", "Description=mlcdk model server", "After=network-online.target",
                      "[Service]", "EnvironmentFile=-/etc/environment", f"ExecStart=/bin/bash -lc {shlex.quote(command)}",
                      "Restart=always", "RestartSec=5", "[Install]", "WantedBy=multi-user.target"])
    return ["# model server", "cat > /etc/systemd/system/mlcdk-model-server.service <<'MLCDK_EOF'", unit, "MLCDK_EOF",
            "systemctl daemon-reload && systemctl enable --now mlcdk-model-server.service"]
