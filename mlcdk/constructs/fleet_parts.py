"""The InferenceFleet's parts that need no state of their own: subnets, fleet alarms, the nodes engine's server
unit, the model cache volume. Functions of the fleet, kept apart so inference_fleet.py reads as its steps."""

from __future__ import annotations

import shlex

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from mlcdk.constructs.fleet_options import FleetAlarmOptions
from mlcdk.constructs.guardrails import Guardrails
from mlcdk.constructs.model import CacheVolume
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.options import GP3_THROUGHPUT_MIBS, StorageOptions
from mlcdk.constructs.validation import check, concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.presets.catalog import InstanceSpec

#: The node's model cache when there is no data volume (on the root volume).
ROOT_CACHE = "/var/lib/mlcdk/models"


def node_subnets(fleet: Construct, vpc: ec2.IVpc, spec: InstanceSpec, region: str | None,
                 reservation_az: str | None = None) -> list[ec2.ISubnet]:
    """The private subnets the servers go in: the reservation's AZ, or every AZ of the VPC that offers the type."""
    subnets = vpc.private_subnets
    check([(not subnets, "vpc has no private subnets; model servers never get public IPs")])
    network = vpc.node.scope
    if reservation_az is not None:  # a reservation lives in one AZ: the servers go there
        ids = network.availability_zone_ids if isinstance(network, PrivateNetwork) else ()
        check([(not ids, "capacity.availability_zone_id needs a VPC from PrivateNetwork (its subnets are pinned "
                         "by AZ ID), so the servers can be placed in the reservation's AZ"),
               (bool(ids) and reservation_az not in ids,
                f"capacity.availability_zone_id ({reservation_az}) is not one of the VPC's AZs ({', '.join(ids)})")])
        warn(fleet, "singleAzFleet", az_id=reservation_az)
        return [subnets[ids.index(reservation_az)]]
    if isinstance(network, PrivateNetwork) and network.availability_zone_ids and region:
        usable = [s for az, s in zip(network.availability_zone_ids, subnets) if az in spec.offered_azs(region)]
        check([(len(usable) < 2, f"vpc: fewer than two of its AZs ({', '.join(network.availability_zone_ids)}) "
                                 f"offer {spec.instance_type}")])
        return usable
    return list(subnets)


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


def cache_volume(storage: StorageOptions) -> CacheVolume:
    """The data volume when configured (its size and throughput), else the root volume at gp3's baseline
    throughput (EC2 User Guide, "General Purpose SSD volumes": 125 MiB/s)."""
    if storage.data_volume_size_gib:
        return CacheVolume(storage.data_volume_size_gib, storage.data_volume_throughput_mibs,
                           f"{storage.data_mount_point.rstrip('/')}/mlcdk-models")
    return CacheVolume(storage.root_volume_size_gib, GP3_THROUGHPUT_MIBS[0], ROOT_CACHE)


def model_server_service(command: str) -> list[str]:
    unit = "\n".join(["[Unit]", "Description=mlcdk model server", "After=network-online.target",
                      "[Service]", "EnvironmentFile=-/etc/environment", f"ExecStart=/bin/bash -lc {shlex.quote(command)}",
                      "Restart=always", "RestartSec=5", "[Install]", "WantedBy=multi-user.target"])
    return ["# model server", "cat > /etc/systemd/system/mlcdk-model-server.service <<'MLCDK_EOF'", unit, "MLCDK_EOF",
            "systemctl daemon-reload && systemctl enable --now mlcdk-model-server.service"]
