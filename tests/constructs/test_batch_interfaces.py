"""The Batch engine's EFA layout: every EFA device the type has, and a free slot on network card 0 for the job
container's awsvpc task interface (issue #21, point 2). Pure Python: no synth.

Expected layouts are written out from the catalog's published network facts (EC2 instance type pages: cards,
interfaces per card, EFA interfaces) and AWS's reference Batch templates (awsome-distributed-training
1.architectures/3.aws-batch/: one ``efa`` interface at card 0 device 0, one per further card at device 0).
"""
from __future__ import annotations

import pytest

from mlcdk.constructs.efa import card0_free_slots, efa_device_count, efa_interfaces
from mlcdk.presets import catalog

EFA, ONLY = "efa", "efa-only"


def layout(interfaces: list[dict]) -> list[tuple[int, int, str]]:
    return [(n["NetworkCardIndex"], n["DeviceIndex"], n["InterfaceType"]) for n in interfaces]


def one_per_card(cards: int) -> list[tuple[int, int, str]]:
    """The reference layout: ENA+EFA on card 0, device 0; one EFA-only interface at device 0 of each further card."""
    return [(0, 0, EFA)] + [(card, 0, ONLY) for card in range(1, cards)]


#: type -> (expected Batch layout, EFA devices, free slots left on card 0 (its limit minus one))
TABLE = {
    "trn1.32xlarge": (one_per_card(8), 8, 4),       # 8 cards of 5 interfaces, 8 EFA
    "trn1n.32xlarge": (one_per_card(16), 16, 4),    # 16 cards of 5, 16 EFA
    "p4d.24xlarge": (one_per_card(4), 4, 14),       # 4 cards of 15, 4 EFA
    "p5.48xlarge": (one_per_card(32), 32, 1),       # 32 cards of 2, 32 EFA: the nodes layout fills card 0
    "p5en.48xlarge": (one_per_card(16), 16, 3),     # 16 cards of 4, 16 EFA
    "p6-b200.48xlarge": (one_per_card(8), 8, 3),    # 8 cards of 4, 8 EFA
}


@pytest.mark.parametrize("instance_type", TABLE)
def test_batch_layout_of_the_reference_types(instance_type):
    expected, devices, free = TABLE[instance_type]
    spec = catalog.get(instance_type)
    interfaces = efa_interfaces(spec, task_interface_slot=True)
    assert layout(interfaces) == expected
    assert sum(n["InterfaceType"] in (EFA, ONLY) for n in interfaces) == devices == efa_device_count(spec)
    assert card0_free_slots(spec, interfaces) == free
    assert interfaces[0]["AssociatePublicIpAddress"] is False
    assert all(n["DeleteOnTermination"] is True for n in interfaces)


def test_the_nodes_layout_of_p5_fills_card_0():
    """Why the Batch layout exists: the EC2 User Guide's layout (ENA primary, EFA-only at card 0 device 1) uses both
    of p5.48xlarge's card-0 slots, and ECS would have nowhere to attach the task interface."""
    spec = catalog.get("p5.48xlarge")
    interfaces = efa_interfaces(spec)
    assert layout(interfaces)[:3] == [(0, 0, "interface"), (0, 1, ONLY), (1, 0, ONLY)]
    assert sum(n["InterfaceType"] == ONLY for n in interfaces) == 32
    assert card0_free_slots(spec, interfaces) == 0


EFA_TYPES = [s for s in catalog.default_catalog() if s.efa_supported]


@pytest.mark.parametrize("spec", EFA_TYPES, ids=lambda s: s.instance_type)
def test_every_efa_type_keeps_its_efa_count_and_a_free_card_0_slot_on_batch(spec):
    interfaces = efa_interfaces(spec, task_interface_slot=True)
    limits = {card.index: card.maximum_network_interfaces for card in spec.network_cards}
    assert sum(n["InterfaceType"] in (EFA, ONLY) for n in interfaces) == spec.maximum_efa_interfaces
    assert layout(interfaces)[0] == (0, 0, EFA)  # the primary carries the node's IP and one EFA device
    slots = [(n["NetworkCardIndex"], n["DeviceIndex"]) for n in interfaces]
    assert len(set(slots)) == len(slots)
    used = {card: sum(c == card for c, _ in slots) for card, _ in slots}
    assert all(card in limits and used[card] <= limits[card] for card in used)
    assert used[0] < limits[0], "card 0 keeps a slot for the task interface"
    assert efa_device_count(spec) == spec.maximum_efa_interfaces  # the job definition maps the same devices
