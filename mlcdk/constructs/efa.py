"""The EFA network-interface layout of a launch template, from the catalog's network-card facts.

Pure Python. Two layouts, both with every EFA device the type supports (``maximum_efa_interfaces``):

- **Nodes** (``engine="nodes"``, InferenceFleet): the EC2 User Guide's basic configuration ("Maximize network
  bandwidth on Amazon EC2 instances with multiple network cards", efa-acc-inst-types): the primary interface
  (card 0, device 0) is ENA (``interface``); card 0, device 1 is ``efa-only``; every further card gets one
  ``efa-only`` interface at device 0. Nothing else attaches interfaces to these nodes, so card 0 may be full.
- **Batch** (``task_interface_slot=True``): AWS Batch runs multi-node parallel jobs in the ECS ``awsvpc`` network
  mode, and ECS attaches one more interface per job container (Batch user guide, "Compute environment
  considerations for MNP", mnp-ce). EC2 attaches an interface to network card 0 unless told otherwise
  (AttachNetworkInterface, ``NetworkCardIndex``: "the default is network card index 0"), and card 0 of
  p5.48xlarge takes 2 interfaces: the nodes layout fills it and the task interface has nowhere to go. So the
  primary interface is ``efa`` (ENA and EFA on one interface: the EC2 User Guide's P5 "use case 1", and the
  layout of AWS's reference p4d, p5 and p6 Batch templates in aws-samples/awsome-distributed-training,
  ``1.architectures/3.aws-batch/``), every further card gets one ``efa-only`` interface at device 0, and card 0
  keeps at least one free slot. Card 0 takes a second EFA interface (device 1) only where the type has fewer
  cards than EFA interfaces and card 0 still keeps a free slot.

:func:`card0_free_slots` reports what is left for the task interface; ``make deploy`` prints it.
"""

from __future__ import annotations

from typing import Any

from mlcdk.presets.catalog import InstanceSpec

INTERFACE_TYPES = ("interface", "efa", "efa-only")
#: The interface types that bring an EFA device (one /dev/infiniband/uverbsN each).
EFA_TYPES = ("efa", "efa-only")


def _card_limits(spec: InstanceSpec) -> dict[int, int]:
    """Each network card's interface limit (a card the catalog gives no limit for takes one interface)."""
    cards = {card.index: card.maximum_network_interfaces or 1 for card in spec.network_cards}
    return cards or {0: 1}


def efa_interfaces(spec: InstanceSpec, *, task_interface_slot: bool = False) -> list[dict[str, Any]]:
    """The NetworkInterfaces entries (without security groups) for an EFA node of ``spec``: the nodes layout, or
    with ``task_interface_slot`` the Batch layout that leaves card 0 a free slot (module docstring)."""
    if not spec.efa_supported or spec.maximum_efa_interfaces < 1:
        raise ValueError(f"{spec.instance_type} does not support EFA")
    wanted = spec.maximum_efa_interfaces
    limits = _card_limits(spec)
    primary = {"NetworkCardIndex": 0, "DeviceIndex": 0, "InterfaceType": "efa" if task_interface_slot else "interface",
               "AssociatePublicIpAddress": False, "DeleteOnTermination": True}
    interfaces: list[dict[str, Any]] = [primary]
    others = [(card, 0) for card in sorted(limits) if card != 0]
    # Card 0's extra EFA slots, device 1 upwards: the nodes layout takes device 1 first (the User Guide's order);
    # the Batch layout only when the other cards are too few, and never the card's last free slot.
    reserve = 1 if task_interface_slot else 0
    card0 = [(0, device) for device in range(1, limits.get(0, 1) - reserve)]
    slots = others + card0 if task_interface_slot else card0[:1] + others + card0[1:]
    efa_count = 1 if task_interface_slot else 0
    for card, device in slots:
        if efa_count >= wanted:
            break
        interfaces.append({"NetworkCardIndex": card, "DeviceIndex": device, "InterfaceType": "efa-only",
                           "DeleteOnTermination": True})
        efa_count += 1
    if efa_count < wanted:
        raise ValueError(f"{spec.instance_type}: its network cards ({limits}) cannot hold {wanted} EFA interfaces"
                         + (" and a free slot on card 0 for the job's task interface" if task_interface_slot else ""))
    return interfaces


def efa_device_count(spec: InstanceSpec) -> int:
    """EFA devices a node of ``spec`` gets (one /dev/infiniband/uverbsN each): the same in both layouts."""
    return sum(nic["InterfaceType"] in EFA_TYPES for nic in efa_interfaces(spec))


def card0_free_slots(spec: InstanceSpec, interfaces: list[dict[str, Any]]) -> int:
    """How many more interfaces network card 0 of ``spec`` takes beside ``interfaces`` (ECS's task interface)."""
    used = sum(nic["NetworkCardIndex"] == 0 for nic in interfaces)
    return _card_limits(spec).get(0, 1) - used
