"""The construct side of the plan steps: what a plan reads from the stack, the VPC and cdk values, and the subnets
it chose (its warnings are raised by mlcdk.constructs.warning_registry.warn_noted). The plans themselves
(mlcdk.constructs.plan_training, plan_fleet) import no aws_cdk."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mlcdk.constructs.limits import GraceInput
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.placement import VpcFacts
from mlcdk.constructs.plan_training import Environment
from mlcdk.constructs.validation import concrete


def vpc_facts(vpc: ec2.IVpc | None) -> VpcFacts | None:
    """A brought VPC as the plan sees it: its ID and, for a VPC from PrivateNetwork, the AZ IDs of its subnets
    (only there does mlcdk know each subnet's AZ ID at synth: ``ec2.ISubnet.availability_zone`` is an AZ name,
    which maps to an ID differently in every account)."""
    if vpc is None:
        return None
    network = vpc.node.scope
    ids = network.availability_zone_ids if isinstance(network, PrivateNetwork) else None
    return VpcFacts(vpc_id=vpc.vpc_id, az_ids=tuple(ids) if ids else None, private_subnets=len(vpc.private_subnets),
                    isolated_subnets=len(vpc.isolated_subnets))


def stack_environment(scope: Construct, vpc: ec2.IVpc | None) -> Environment:
    """The stack's concrete region and account (None for the tokens of an env-agnostic stack) and the VPC."""
    stack = cdk.Stack.of(scope)
    return Environment(region=stack.region if concrete(stack.region) else None,
                       account=stack.account if concrete(stack.account) else None, vpc=vpc_facts(vpc))


def grace_input(grace: cdk.Duration) -> GraceInput:
    """A cdk.Duration as the plan checks it: whole milliseconds, or None for a deploy-time token."""
    if grace.is_unresolved():
        return GraceInput(None, "a token")
    return GraceInput(grace.to_milliseconds(), grace.to_human_string())


def subnets_in(vpc: ec2.IVpc, subnets: list[ec2.ISubnet], az_ids: Iterable[str]) -> list[ec2.ISubnet]:
    """The subnets of a VPC from PrivateNetwork (pinned by AZ ID) that sit in ``az_ids``, in that order."""
    ids = list(vpc.node.scope.availability_zone_ids)
    return [subnets[ids.index(az)] for az in az_ids]


def cluster_subnet(vpc: ec2.IVpc, az_id: str | None) -> ec2.ISubnet:
    """The training cluster's one subnet: in the plan's AZ for a VPC pinned by AZ ID, else the first private (or
    isolated) one; the plan step checked that there is one (placement.check_private_subnets)."""
    subnets = vpc.private_subnets or vpc.isolated_subnets
    facts = vpc_facts(vpc)
    if facts.az_ids and az_id is not None:
        return subnets_in(vpc, subnets, [az_id])[0]
    return subnets[0]
