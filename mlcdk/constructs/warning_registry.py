"""Every ``mlcdk:*`` warning, in one table, and the one function that raises them (as cdk-nag keeps its rules).

A construct never calls ``Annotations.add_warning_v2`` itself: it calls :func:`warn` with a warning's ID and the
values its message names, e.g. ``warn(self, "noPrice", instance_type="p5.48xlarge", region="us-east-1")``.
``warn`` formats the entry's template and adds ``mlcdk:<id>``, which users acknowledge with
``cdk.Annotations.of(scope).acknowledge_warning("mlcdk:noPrice", reason)``. An unknown ID, or a value missing
from or extra to the template, is a bug in mlcdk: it raises (KeyError, TypeError) rather than warning.

The table is Python, not a data file: each template is a format string whose placeholders are the call sites'
keyword arguments, so tests/test_warning_registry.py can check every call against it from the source, and the
README's list (``make warnings``, scripts/readme_warnings.py) is generated from it.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

from mlcdk.constructs.plan_warnings import PlanWarning

#: What every ID is prefixed with in the cloud assembly, and in an acknowledgement.
PREFIX = "mlcdk:"


@dataclass(frozen=True)
class WarningRule:
    """One warning: its ID (``mlcdk:`` + id), a one-line summary, why it matters (the fact or the risk, with its
    source where one exists), and the message template, whose named placeholders the call gives."""

    id: str
    summary: str
    why: str
    template: str

    @property
    def placeholders(self) -> frozenset[str]:
        """The names the template needs, each exactly once as a keyword of :func:`warn`."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.template) if name)


_IMAGE_UNCHECKED = ("({image}) cannot be inspected at synth: its tag names no CUDA (cuNNN) or Neuron SDK (sdkX.Y.Z) "
                    "version. To drive {instance_type} it needs {needs}")
_IMAGE_WHY = ("The image's tag is how mlcdk reads the CUDA or Neuron SDK version it was built for (the AWS Deep "
              "Learning Containers' tag scheme, mlcdk/presets/data/containers.json); a container built for another "
              "driver fails on the nodes only when it starts")

WARNINGS: tuple[WarningRule, ...] = (
    # Training: the instance type, EFA and placement.
    WarningRule(
        "noEfa", "A multi-node training cluster of a type without EFA.",
        "Without EFA the collectives run over TCP at the type's network bandwidth, often the bottleneck of "
        "multi-node training (Amazon EC2 User Guide, 'Elastic Fabric Adapter').",
        "{instance_type} has no EFA: the {nodes} nodes' collectives will run over TCP at up to {bandwidth}; for "
        "multi-node training choose a type with EFA (trn1, p4d, p5 and others; `mlcdk catalog list`)"),
    WarningRule(
        "efaOff", "efa=False on a multi-node cluster of a type that supports EFA.",
        "The collectives then run over TCP though the nodes could bypass the kernel (Amazon EC2 User Guide, "
        "'Elastic Fabric Adapter').",
        "efa is off for a {nodes}-node cluster of {instance_type}, which supports {efa_interfaces} EFA interfaces: "
        "collectives will run over TCP."),
    WarningRule(
        "placementGroupOff", "A multi-node EFA cluster without a cluster placement group.",
        "A cluster placement group packs the nodes for low latency (Amazon EC2 User Guide, 'Placement groups'); it "
        "stays off with a capacity reservation made outside one, which cannot serve nodes placed in a new group "
        "(eksctl #7949).",
        "placement_group is off for a {nodes}-node EFA cluster of {instance_type}: {reason}."),
    WarningRule(
        "placementWithReservation", "placement_group=True together with a capacity reservation.",
        "A reservation serves a cluster placement group's instances only when it was made in that group (Amazon "
        "EC2 User Guide, 'Capacity Reservations in cluster placement groups').",
        "placement_group=True with a capacity reservation: nodes in this new placement group match only a "
        "reservation made in it, and with 'capacity-reservations-only' they fail to launch otherwise"),
    WarningRule(
        "unverifiedAz", "A brought VPC whose subnets are not pinned by AZ ID.",
        "AZ names map to AZ IDs differently in every account, so mlcdk cannot check at synth that the subnet's AZ "
        "offers the type (AWS RAM User Guide, 'Availability Zone IDs for your AWS resources').",
        "the VPC's subnets are not pinned by AZ ID, so mlcdk cannot check that their AZ offers {instance_type} "
        "(offered in {offered_azs}); use PrivateNetwork"),
    WarningRule(
        "unpinnedAvailabilityZones", "A PrivateNetwork without availability_zone_ids.",
        "The subnets go to the first AZs CDK picks (by name, or Fn::GetAZs in an env-agnostic stack), and not every "
        "AZ offers every accelerated type (the EC2 API's DescribeInstanceTypeOfferings, in the catalog).",
        "no availability_zone_ids: the subnets are in {where}, and nothing guarantees that these AZs offer the "
        "instance type; pass availability_zone_ids (the AZ IDs that `mlcdk catalog show TYPE` lists for the "
        "region) to pin them"),
    # Fallback instance types.
    WarningRule(
        "presetFallbacksDropped", "Some of the preset's fallback types cannot replace the instance type here.",
        "A fallback that is not offered where the nodes run, or cannot run the same work, would fail at launch or "
        "mid-job; each dropped type is named with its reason.",
        "preset fallback types not used with {instance_type}: {dropped}"),
    WarningRule(
        "capacityFallbacksUnused", "Fallback types with a targeted capacity reservation.",
        "A reservation holds one instance type (Amazon EC2 User Guide, 'On-Demand Capacity Reservations'), so "
        "nodes of another type would launch outside it.",
        "the preset's fallback types ({fallbacks}) are not used: the capacity reservation holds {instance_type} "
        "only"),
    WarningRule(
        "batchFallbacksUnused", "Fallback types on a multi-node AWS Batch cluster.",
        "A multi-node parallel job definition runs every node on one instance type (AWS Batch User Guide, "
        "'Multi-node parallel jobs').",
        "the preset's fallback types ({fallbacks}) are not used: a multi-node Batch job runs every node on "
        "{instance_type}"),
    # Images.
    WarningRule(
        "jobImageUnchecked", "A job image whose tag names no CUDA or Neuron SDK version.", _IMAGE_WHY + ".",
        "job.image " + _IMAGE_UNCHECKED + "; `mlcdk check` tests it on the deployed cluster"),
    WarningRule(
        "serverImageUnchecked", "A model server image whose tag names no CUDA or Neuron SDK version.",
        _IMAGE_WHY + ".", "model.image " + _IMAGE_UNCHECKED),
    # The Batch task network.
    WarningRule(
        "taskNetworkUnmanaged", "An imported VPC whose default security group mlcdk cannot open for Batch.",
        "AWS Batch puts each multi-node job container's interface in the VPC's default security group; without "
        "ingress from itself the nodes' rendezvous fails (AWS Batch User Guide, 'Multi-node parallel jobs').",
        "AWS Batch puts each multi-node job container's network interface in the VPC's default security group (the "
        "compute environment cannot carry groups beside the EFA interfaces), and mlcdk cannot change the default "
        "group of an imported VPC: give it ingress of all traffic from itself and from the cluster's group "
        "(cluster.connections), and egress to 0.0.0.0/0, or the job's rendezvous and S3 access fail"),
    WarningRule(
        "defaultSecurityGroupOpened", "mlcdk opened the default security group of a VPC you brought.",
        "Batch's multi-node containers use the default group, so mlcdk allows traffic within it; every other "
        "resource in that group can then reach the nodes.",
        "the default security group of the VPC you brought now allows all traffic from itself and from the "
        "cluster's nodes, and egress anywhere: AWS Batch puts each multi-node job container's interface there. "
        "Every other resource in that default group can reach the cluster's nodes; move such resources to groups "
        "of their own"),
    # Capacity.
    WarningRule(
        "capacityBlockGrace", "A checkpoint grace period longer than a Capacity Block's warning leaves.",
        "EC2 warns 40 minutes before a block's end and terminates from 30 minutes before it (Amazon EC2 User Guide, "
        "'Work with Capacity Blocks' and 'Monitor Capacity Blocks using EventBridge'; mlcdk/presets/data/"
        "capacity.json).",
        "checkpoint_grace_period ({grace_minutes:g} min) does not fit a Capacity Block's end: the warning comes "
        "{warning_minutes} min before it and terminations start {termination_minutes} min before it, "
        "{window_minutes} min apart; {remedy}, or shorten the grace period"),
    WarningRule(
        "capacityBlockPrice", "A Capacity Block without capacity.hourly_price_usd.",
        "A block is paid upfront at its own price, which the catalog does not hold; the on-demand rate stands in.",
        "the cost metric and budget price the Capacity Block at the on-demand rate of {instance_type}; give "
        "capacity.hourly_price_usd (the block's upfront price / instance-hours)"),
    WarningRule(
        "singleAzFleet", "An inference fleet pinned to its capacity reservation's one AZ.",
        "A reservation is in one AZ (Amazon EC2 User Guide, 'On-Demand Capacity Reservations'): the servers cannot "
        "spread, so an AZ outage stops the fleet.",
        "the model servers run in one AZ ({az_id}), the reservation's: an AZ outage stops the fleet; the load "
        "balancer keeps its AZs"),
    # Cost.
    WarningRule(
        "noPrice", "No catalog price for the instance type in the region.",
        "The cost metric and the default budget are computed from the catalog's on-demand price (AWS Price List "
        "API); without one they cannot be.",
        "no catalog price for {instance_type} in {region}: no cost metric, and the budget needs monthly_budget_usd"),
    WarningRule(
        "noFsxPrice", "No sourced FSx for Lustre price for the file system's deployment type and tier.",
        "A cost that mlcdk cannot source is left out, not guessed (mlcdk/presets/data/fsx.json).",
        "no sourced FSx for Lustre price for {deployment_type}{at_throughput} in {region} "
        "(mlcdk/presets/data/fsx.json): the file system's cost is not in EstimatedMonthlyCostUsd or the default "
        "budget"),
    WarningRule(
        "fsxBucketKey", "An imported KMS key on the checkpoint bucket that FSx for Lustre links to.",
        "FSx reaches a linked bucket through its service-linked role (AWSServiceRoleForFSxS3Access_ and the file "
        "system's ID), which can use a customer-managed key only where the key policy allows it (Amazon FSx for "
        "Lustre User Guide, 'Working with server-side encrypted Amazon S3 buckets'); mlcdk cannot edit an imported "
        "key's policy.",
        "the checkpoint bucket's KMS key is imported, so mlcdk cannot let FSx use it: add a key policy statement for "
        "the role AWSServiceRoleForFSxS3Access_<file system id> (see the README)"),
    # Serving.
    WarningRule(
        "trainingTypeForServing", "An inference fleet of a multi-card training type.",
        "Serving uses one network card and no EFA; the extra cards and EFA interfaces are paid for but idle.",
        "{instance_type} is built for multi-node training ({network_cards} network cards, {efa_interfaces} EFA "
        "interfaces) that serving does not use; a single-card type (inf2, g6e, g5) usually costs less per request"),
    WarningRule(
        "warmupShorterThanStartup", "scaling.warmup shorter than the model's estimated first start.",
        "ECS replaces a task that fails its health checks after the grace period, so a server still loading its "
        "weights is stopped and started over (Amazon ECS Developer Guide, 'healthCheckGracePeriodSeconds').",
        "scaling.warmup ({warmup_seconds:g} s) is shorter than the model's estimated first start ({estimate}): ECS "
        "may stop servers that are still loading, over and over"),
    WarningRule(
        "noModelServer", "engine='nodes' without model_server_command.",
        "Nothing answers the load balancer's health check until a server starts, so ELB health checks would "
        "replace every node at the end of each grace period; EC2 health checks are used instead.",
        "engine='nodes' without model_server_command: nothing on the nodes answers the load balancer's health "
        "check until you start a server (e.g. from your AMI), so the group uses EC2 health checks rather than "
        "replacing its nodes every grace period; use engine='ecs' with model=ModelOptions(...) to serve a model"),
    WarningRule(
        "publicWithoutTls", "An internet-facing fleet without a certificate (allow_public_without_tls=True).",
        "Prompts and completions then cross the internet in clear text.",
        "the fleet is internet-facing without a certificate: requests and responses cross the internet unencrypted "
        "on port {port}"),
    WarningRule(
        "publicWithoutWaf", "An internet-facing fleet without a web ACL.",
        "Nothing filters requests before the model servers; AWS WAF attaches to application load balancers only "
        "(AWS WAF Developer Guide, 'Resources that you can protect'). NIST 800-53's ALBWAFEnabled is left to you.",
        "the fleet is internet-facing without a web ACL: nothing filters requests before they reach the model "
        "servers; {remedy}"),
    WarningRule(
        "regionalArnInEnvAgnosticStack", "An env-agnostic stack given a regional certificate or web ACL.",
        "A load balancer uses only a certificate and a web ACL of its own region (ACM User Guide; AWS WAF "
        "Developer Guide), so the stack deploys to that region only.",
        "the {what} is in {region}, and a load balancer can use only one of its own region: deploy this "
        "env-agnostic stack to {region} only"),
    WarningRule(
        "noAccessLogs", "An env-agnostic stack's load balancer, which logs nothing.",
        "ELB access log delivery is regional, so CDK enables it only for a concrete region (Elastic Load Balancing "
        "User Guide, 'Access logs').",
        "env-agnostic stack: ELB access logs need a concrete region (log delivery is regional); set one to get "
        "them"),
)

_BY_ID = {rule.id: rule for rule in WARNINGS}


def rule(warning_id: str) -> WarningRule:
    """The table's entry for ``warning_id`` (without the ``mlcdk:`` prefix); KeyError for an unknown one."""
    try:
        return _BY_ID[warning_id]
    except KeyError:
        raise KeyError(f"unknown mlcdk warning ID {warning_id!r}; add it to WARNINGS in {__name__}") from None


def message(warning_id: str, /, **values: object) -> str:
    """The entry's template filled with ``values``, which must name exactly its placeholders (TypeError)."""
    entry = rule(warning_id)
    missing, extra = entry.placeholders - values.keys(), values.keys() - entry.placeholders
    if missing or extra:
        raise TypeError(f"warning {warning_id!r} takes {', '.join(sorted(entry.placeholders)) or 'no values'}; "
                        f"missing: {', '.join(sorted(missing)) or 'none'}; extra: {', '.join(sorted(extra)) or 'none'}")
    return entry.template.format(**values)


def warn(scope: IConstruct, warning_id: str, /, **values: object) -> None:
    """Add warning ``mlcdk:<warning_id>`` to ``scope``, its message formatted from the table (see the module)."""
    cdk.Annotations.of(scope).add_warning_v2(PREFIX + warning_id, message(warning_id, **values))


def warn_noted(scope: IConstruct, noted: Iterable[PlanWarning]) -> None:
    """Add the warnings a plan step noted before ``scope`` existed (mlcdk.constructs.plan_warnings), in order."""
    for entry in noted:
        warn(scope, entry.id, **dict(entry.values))
