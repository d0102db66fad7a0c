"""The InferenceFleet's parts that need no state of their own: subnets, fleet alarms, the nodes engine's server
unit. Functions of the fleet, kept apart so inference_fleet.py reads as its steps."""

from __future__ import annotations

import shlex

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from mlcdk.constructs.fleet_options import FleetAlarmOptions
from mlcdk.constructs.guardrails import Guardrails
from mlcdk.constructs.plan_inputs import subnets_in
from mlcdk.constructs.validation import concrete

def node_subnets(vpc: ec2.IVpc, az_ids: tuple[str, ...] | None) -> list[ec2.ISubnet]:
    """The private subnets the servers go in: those of the plan's AZ IDs (a VPC pinned by AZ ID), else all (the plan
    step checked that there are some: placement.check_private_subnets)."""
    subnets = vpc.private_subnets
    return list(subnets) if az_ids is None else subnets_in(vpc, subnets, az_ids)


def fleet_alarms(fleet, guardrails: Guardrails, options: FleetAlarmOptions) -> None:
    """Unhealthy servers, pinned at max capacity, and on an ALB p99 latency and the 5xx rate."""
    label = fleet.node.id
    group_metrics = fleet.target_group.metrics
    unhealthy = (group_metrics.unhealthy_host_count if isinstance(fleet.target_group, elbv2.ApplicationTargetGroup)
                 else group_metrics.un_healthy_host_count)(period=cdk.Duration.minutes(1))
    guardrails.add_alarm("UnhealthyHosts", unhealthy,
                         0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=5,
                         description=f"{label}: unhealthy model servers for 5 minutes")
    if concrete(fleet.max_capacity):
        guardrails.add_alarm("AtMaxCapacity", fleet.metric_in_service_instances(period=cdk.Duration.minutes(5)),
                             fleet.max_capacity, cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                             periods=6, description=f"{label}: pinned at max_capacity ({fleet.max_capacity}) for 30 "
                             "minutes; the fleet needs more room")
    if isinstance(fleet.target_group, elbv2.ApplicationTargetGroup):
        guardrails.add_alarm("LatencyP99", fleet.target_group.metrics.target_response_time(
            statistic="p99", period=cdk.Duration.minutes(5)), options.p99_latency_seconds,
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
            description=f"{label}: p99 response time above {options.p99_latency_seconds} s")
        lb = fleet.load_balancer.metrics
        errors = cloudwatch.MathExpression(
            expression="100 * (FILL(target5xx, 0) + FILL(lb5xx, 0)) / requests",
            using_metrics={"target5xx": fleet.target_group.metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=cdk.Duration.minutes(5)),
                "lb5xx": lb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=cdk.Duration.minutes(5)),
                "requests": lb.request_count(period=cdk.Duration.minutes(5))},
            label="5xx rate (%)", period=cdk.Duration.minutes(5))
        guardrails.add_alarm("ErrorRate", errors, options.error_rate_percent,
                             cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                             description=f"{label}: 5xx responses above {options.error_rate_percent}% of requests")


def scales(low, high) -> bool:
    """Whether the fleet has room to scale (a scaling policy needs max > min)."""
    return not (concrete(low) and concrete(high) and low == high)


def model_server_service(command: str) -> list[str]:
    unit = "\n".join(["[Unit]", "Description=mlcdk model server", "After=network-online.target",
                      "[Service]", "EnvironmentFile=-/etc/environment", f"ExecStart=/bin/bash -lc {shlex.quote(command)}",
                      "Restart=always", "RestartSec=5", "[Install]", "WantedBy=multi-user.target"])
    return ["# model server", "cat > /etc/systemd/system/mlcdk-model-server.service <<'MLCDK_EOF'", unit, "MLCDK_EOF",
            "systemctl daemon-reload && systemctl enable --now mlcdk-model-server.service"]
