"""Capacity facts: which types run in Capacity Blocks for ML, and when a block ends its instances.

Pure Python (no aws_cdk): the constructs, the advisor and ``mlcdk preflight`` share it. The figures and their
sources are in ``data/capacity.json``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlcdk.presets import catalog, datafile
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.identifiers import AZ_ID, RESERVATION_ID, ArnRule  # noqa: F401 - AZ_ID, RESERVATION_ID: here too

DATA = catalog.DATA_DIR / "capacity.json"
#: A Capacity Reservation resource group (AWS Resource Groups): its ARN's service and resource.
RESERVATION_GROUP = ArnRule(service="resource-groups", resource_prefix="group/",
                            example="arn:aws:resource-groups:us-east-1:123456789012:group/my-reservations")


@dataclass(frozen=True)
class CapacityFacts:
    termination_minutes_before_end: int
    warning_minutes_before_end: int
    warning_detail_types: tuple[str, ...]
    reservation_preferences: tuple[str, ...]
    #: Engines that launch into Capacity Blocks / honour ODCR targeting, and why (data/capacity.json "engines").
    engines_without_blocks: tuple[str, ...] = ()
    engines_without_odcr: tuple[str, ...] = ()
    engine_reasons: tuple[tuple[str, str], ...] = ()

    @property
    def checkpoint_window_minutes(self) -> int:
        """Minutes between a block's expiration warning and the start of its terminations."""
        return self.warning_minutes_before_end - self.termination_minutes_before_end


@functools.cache
def facts() -> CapacityFacts:
    with datafile.reading(DATA):
        raw = datafile.read_document(DATA)
        block = raw["capacity_block"]
        return CapacityFacts(
            termination_minutes_before_end=int(block["termination_minutes_before_end"]),
            warning_minutes_before_end=int(block["warning_minutes_before_end"]),
            warning_detail_types=tuple(block["warning_detail_types"]),
            reservation_preferences=tuple(raw["reservation_preferences"]["values"]),
            engines_without_blocks=tuple(name for name, e in raw["engines"].items() if not e["capacity_block"]),
            engines_without_odcr=tuple(name for name, e in raw["engines"].items() if not e["odcr_targeting"]),
            engine_reasons=tuple((name, e["reason"]) for name, e in raw["engines"].items()),
        )


def engine_capacity_problem(engine: str, *, capacity_block: bool, targeted: bool) -> str | None:
    """Why ``engine`` cannot honour a Capacity Block (or a reservation target), from data/capacity.json; None
    when it can."""
    f = facts()
    if capacity_block and engine in f.engines_without_blocks:
        return (f"capacity.capacity_block with engine={engine!r}: no AWS Batch documentation says Batch launches into "
                "a Capacity Block, and Batch ignores the launch template's instance market options (Batch user guide, "
                "'Use Amazon EC2 launch templates with AWS Batch'); use engine='nodes', whose Auto Scaling group "
                "launches into the block")
    if targeted and engine in f.engines_without_odcr:
        return f"capacity.reservation_id with engine={engine!r}: {dict(f.engine_reasons)[engine]}"
    return None


def sells_capacity_blocks(spec: InstanceSpec) -> bool:
    """Whether ``spec`` runs in Capacity Blocks for ML: the EC2 API lists "capacity-block" among its supported
    usage classes (cross-checked against the EC2 User Guide in data/capacity.json)."""
    return "capacity-block" in spec.usage_classes


def capacity_block_types() -> tuple[str, ...]:
    """Every catalog type that runs in Capacity Blocks."""
    return tuple(sorted(s.instance_type for s in catalog.default_catalog() if sells_capacity_blocks(s)))
