"""Capacity facts: which types Capacity Blocks for ML sell, and when a block ends its instances.

Pure Python (no aws_cdk): the constructs, the advisor and ``mlcdk preflight`` share it. The figures and their
sources are in ``data/capacity.json``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "capacity.json"
#: An On-Demand Capacity Reservation or Capacity Block ID: "cr-" and 17 hexadecimal digits.
RESERVATION_ID = re.compile(r"cr-[0-9a-f]{17}")
#: An AZ ID ("use1-az4") or a Local Zone's ("use1-dfw2-az1"); group 1 is the region's short code ("use1").
AZ_ID = re.compile(r"([a-z]{2,5}\d)(?:-[a-z]{3,5}\d+)?-az\d{1,2}")
#: A Capacity Reservation resource group (AWS Resource Groups) ARN.
RESERVATION_GROUP_ARN = re.compile(r"arn:aws(-[a-z]+)*:resource-groups:[a-z0-9-]+:\d{12}:group/[A-Za-z0-9._-]{1,300}")


@dataclass(frozen=True)
class CapacityFacts:
    capacity_block_types: frozenset[str]
    termination_minutes_before_end: int
    warning_minutes_before_end: int
    warning_detail_types: tuple[str, ...]
    reservation_preferences: tuple[str, ...]

    @property
    def checkpoint_window_minutes(self) -> int:
        """Minutes between a block's expiration warning and the start of its terminations."""
        return self.warning_minutes_before_end - self.termination_minutes_before_end


@functools.cache
def facts() -> CapacityFacts:
    raw = json.loads(DATA.read_text())
    block = raw["capacity_block"]
    return CapacityFacts(
        capacity_block_types=frozenset(raw["capacity_block_types"]["types"]),
        termination_minutes_before_end=int(block["termination_minutes_before_end"]),
        warning_minutes_before_end=int(block["warning_minutes_before_end"]),
        warning_detail_types=tuple(block["warning_detail_types"]),
        reservation_preferences=tuple(raw["reservation_preferences"]["values"]),
    )


def sells_capacity_blocks(instance_type: str) -> bool:
    """Whether Capacity Blocks for ML are sold for ``instance_type`` (data/capacity.json, sourced)."""
    return instance_type.lower() in facts().capacity_block_types
