"""The EFA network-interface layout of a launch template, from the catalog's network-card facts.

Pure Python. Layout per the EC2 User Guide ("Maximize network bandwidth on Amazon EC2 instances with
multiple network cards"): the primary interface (card 0, device 0) is ENA; card 0, device 1 is an
EFA-only interface when card 0 supports EFA; every further card gets one EFA-only interface at device 0.
That gives one EFA device per card, up to the type's maximum (trn1.32xlarge 8, p5.48xlarge 32).
"""

from __future__ import annotations

from typing import Any

from mlcdk.presets.catalog import InstanceSpec

INTERFACE_TYPES = ("interface", "efa", "efa-only")


def efa_interfaces(spec: InstanceSpec) -> list[dict[str, Any]]:
    """The NetworkInterfaces entries (without security groups) for an EFA cluster node of ``spec``."""
    if not spec.efa_supported or spec.maximum_efa_interfaces < 1:
        raise ValueError(f"{spec.instance_type} does not support EFA")
    interfaces: list[dict[str, Any]] = [
        {"NetworkCardIndex": 0, "DeviceIndex": 0, "InterfaceType": "interface",
         "AssociatePublicIpAddress": False, "DeleteOnTermination": True},
    ]
    cards = [card.index for card in spec.network_cards] or [0]
    efa_slots = [(0, 1)] + [(card, 0) for card in cards if card != 0]
    for card, device in efa_slots[: spec.maximum_efa_interfaces]:
        interfaces.append({"NetworkCardIndex": card, "DeviceIndex": device, "InterfaceType": "efa-only",
                           "DeleteOnTermination": True})
    return interfaces


def efa_device_count(spec: InstanceSpec) -> int:
    """EFA devices a node of ``spec`` gets from :func:`efa_interfaces` (one /dev/infiniband/uverbsN each)."""
    return sum(nic["InterfaceType"] in ("efa", "efa-only") for nic in efa_interfaces(spec))
