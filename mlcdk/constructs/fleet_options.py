"""The InferenceFleet's option groups: load balancer, scaling and fleet alarms (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm



@dataclass(frozen=True)
class LoadBalancerOptions:
    """The fleet's load balancer.

    :param kind: "application" (HTTP, the default) or "network" (TCP/TLS, for gRPC or raw TCP).
    :param internet_facing: put it in public subnets. An internet-facing fleet refuses a ``port`` that
        administration services listen on (SSH, RDP, databases, etcd, the kubelet...: see
        ``fleet_checks.SENSITIVE_PORTS``), and warns (``mlcdk:publicWithoutWaf``) without a web ACL.
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

    :param signal: "requests" (ALB requests per target, the default), "queue" (vLLM's waiting requests per
        server, ``vllm:num_requests_waiting`` scraped by the CloudWatch agent; engine="ecs" only), "accelerator"
        (accelerator utilization from the guardrails metrics) or "cpu". With engine="ecs" the service's task count
        is scaled (ECS then sizes the group); with engine="nodes", the group.
    :param target: the target value, a finite number above 0: requests per target per minute (default 60),
        waiting requests per server (default 4), or percent up to 100 (default 70 for accelerator, 60 for CPU).
    :param warmup: how long a new server needs before it answers its health check: the ECS service's (or, with
        engine="nodes", the group's ELB) health-check grace period and the group's default instance warm-up.
        Default: with engine="ecs", computed from the model's size, the node's network and disk throughput and, on
        Neuron, the compile time (:func:`mlcdk.presets.model_server.startup_estimate`); with engine="nodes", 10 minutes
        (mlcdk cannot know what your server command loads).
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
