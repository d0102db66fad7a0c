"""Where the nodes go: the AZ IDs of a new network and the AZ (or AZs) of the nodes' subnets, decided before any
resource exists. Pure (no aws_cdk): the plan steps call these with what they know of the VPC (:class:`VpcFacts`).

AZ names map to AZ IDs differently in every account, so mlcdk knows a subnet's AZ ID at synth only for a VPC
from PrivateNetwork, which pins its subnets by AZ ID (EC2 User Guide, "AZ IDs").
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcdk.constructs.validation import check
from mlcdk.errors import ConfigurationError
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.counts import MAX_NETWORK_AZS


@dataclass(frozen=True)
class VpcFacts:
    """What the plan knows of a VPC the user brought: its ID (a token, usually) and, for a VPC from PrivateNetwork,
    the AZ IDs its private subnets are pinned to, in subnet order (None: not pinned by AZ ID)."""

    vpc_id: str | None
    az_ids: tuple[str, ...] | None
    private_subnets: int = 1
    isolated_subnets: int = 0


def check_private_subnets(vpc: VpcFacts | None, what: str, isolated_ok: bool) -> None:
    """Nodes never get public IPs: a brought VPC needs private subnets (or, where ``isolated_ok``, isolated ones)."""
    if vpc is None:
        return
    usable = vpc.private_subnets + (vpc.isolated_subnets if isolated_ok else 0)
    kinds = "private or isolated subnets" if isolated_ok else "private subnets"
    check([(usable == 0, f"vpc has no {kinds}; {what} never get public IPs")])


def network_az_ids(spec: InstanceSpec, region: str | None, required: str | None = None) -> tuple[str, ...]:
    """The AZ IDs a new network for ``spec`` spans: up to MAX_NETWORK_AZS of ``region`` that offer it, with
    ``required`` (a pinned AZ ID, or a reservation's) among them. Empty for an env-agnostic stack."""
    offered = spec.offered_azs(region)[:MAX_NETWORK_AZS] if region else ()
    if required and offered and required not in offered:
        offered = (required, *offered[:MAX_NETWORK_AZS - 1])
    return offered


def pinned_ids(vpc: VpcFacts | None, new_network: tuple[str, ...]) -> tuple[str, ...]:
    """The AZ IDs of the subnets, in order: the new network's, or a brought PrivateNetwork's; () when unknown."""
    if vpc is None:
        return new_network
    return vpc.az_ids or ()


def intended_az(vpc: VpcFacts | None, spec: InstanceSpec, region: str | None, az_id: str | None) -> str | None:
    """The AZ ID the nodes will use, known before any resource exists (None when it cannot be known)."""
    if az_id or region is None:
        return az_id
    if vpc is None or vpc.az_ids:
        ids = vpc.az_ids if vpc is not None else None
        offered = [i for i in (ids or spec.offered_azs(region)) if i in spec.offered_azs(region)]
        return offered[0] if offered else None
    return None


def cluster_az(ids: tuple[str, ...], spec: InstanceSpec, region: str | None, az_id: str | None) -> str | None:
    """The one AZ ID of a training cluster's subnet among the pinned ``ids`` (() when not pinned: then the
    VPC's first private subnet, ``az_id`` unchecked)."""
    if not ids:
        return az_id
    usable = [i for i in ids if region is None or i in spec.offered_azs(region)]
    wanted = az_id or (usable[0] if usable else None)
    check([
        (wanted is None, f"vpc: none of its AZs ({', '.join(ids)}) offers {spec.instance_type}; offered in "
                         f"{region}: {', '.join(spec.offered_azs(region or '')) or 'none'}"),
        (wanted is not None and wanted not in ids,
         f"availability_zone_id ({wanted}) is not one of the VPC's AZs ({', '.join(ids)})"),
    ])
    return wanted


def check_pinned_vpc(vpc: VpcFacts | None, region: str | None, az_id: str | None, pinned_by: str) -> None:
    """A pinned AZ needs a network mlcdk can place in it: a region to build one in, or a VPC pinned by AZ ID."""
    check([(vpc is None and region is None and az_id is not None,
            f"{pinned_by} ({az_id}): the stack is env-agnostic, so mlcdk cannot build a network in "
            "that AZ (the deploy region is unknown at synth, and its subnets would go to the first AZs of "
            "Fn::GetAZs); give the stack a region (env=cdk.Environment(region=...)), or pass vpc= a PrivateNetwork "
            "pinned to that AZ ID")])
    if vpc is not None and az_id is not None and not vpc.az_ids:
        raise ConfigurationError(
            f"{pinned_by} ({az_id}): the VPC you brought does not pin its subnets by AZ ID (AZ "
            "names map to IDs differently in every account), so mlcdk cannot place the nodes in that AZ; build "
            "the VPC with PrivateNetwork(availability_zone_ids=[...]), or leave the AZ ID out (the nodes then go "
            "to the VPC's first private subnet)")


def fleet_azs(vpc: VpcFacts | None, new_network: tuple[str, ...], spec: InstanceSpec, region: str | None,
              reservation_az: str | None) -> tuple[str, ...] | None:
    """The AZ IDs of the model servers' subnets: the reservation's one AZ, or every pinned AZ that offers the type
    (at least two); None for every private subnet of a VPC that is not pinned by AZ ID."""
    ids = pinned_ids(vpc, new_network)
    if reservation_az is not None:  # a reservation lives in one AZ: the servers go there
        check([(not ids, "capacity.availability_zone_id needs a VPC from PrivateNetwork (its subnets are pinned "
                         "by AZ ID), so the servers can be placed in the reservation's AZ"),
               (bool(ids) and reservation_az not in ids,
                f"capacity.availability_zone_id ({reservation_az}) is not one of the VPC's AZs ({', '.join(ids)})")])
        return (reservation_az,)
    if ids and region:
        usable = tuple(az for az in ids if az in spec.offered_azs(region))
        check([(len(usable) < 2, f"vpc: fewer than two of its AZs ({', '.join(ids)}) offer {spec.instance_type}")])
        return usable
    return None
