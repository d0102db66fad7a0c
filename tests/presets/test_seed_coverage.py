"""Every instance type the seed guides name is in the catalog, with its us-east-1 price from the price data.

The seed guides live in ../shared/seeds beside the checkout. CI may run from a clone without it, so the
types they name are also committed here (SEED_TYPES); when the seeds are present, a test checks that the
committed list still covers them. Prices are literals read from data/prices/aws-ml-instance-prices.csv.
"""
from __future__ import annotations

import re

import pytest

from mlcdk.presets import catalog
from tests.harness import ROOT

SEEDS = ROOT.parent / "shared" / "seeds"

#: Type -> its us-east-1 on-demand USD per hour in the price data (None: the data has no price for it).
SEED_TYPES = {
    "trn1.32xlarge": 21.5,  # seed 000
    "inf2.48xlarge": 12.98127,  # seed 000
    "p3.2xlarge": 3.06,  # seed 004, and every other size of the "P3 series"
    "g4dn.xlarge": 0.526,  # seed 004
    "inf1.xlarge": 0.228,  # seed 004
    "trn1.2xlarge": 1.34375,  # seed 004
    "c6i.8xlarge": 1.36,  # seed 004
    # Seed 004's "current hardware": an AMD EPYC 7571 with 7936 MiB, which is m5a.large (2 vCPUs, 8 GiB).
    "m5a.large": 0.086,
}
#: Series the seeds name without a size ("G5g Series", "C7gn Series", "the P3 and G3 series").
SEED_FAMILIES = ("g5g", "c7gn", "p3", "g3", "g3s")
#: The G3 series has no rows in the price data: its price is unknown, never invented.
UNPRICED = {"g3.4xlarge", "g3.8xlarge", "g3.16xlarge", "g3s.xlarge"}

TYPE_NAME = re.compile(r"\b([a-z][a-z0-9-]*\.(?:metal(?:-\d+xl)?|nano|micro|small|medium|\d*xlarge|large))\b")


def seed_texts() -> list[str]:
    if not SEEDS.is_dir():
        pytest.skip(f"{SEEDS} is not beside this checkout (CI clones elsewhere); SEED_TYPES still covers the seeds")
    texts = [path.read_text() for path in sorted(SEEDS.glob("*.txt"))]
    if not texts:
        pytest.skip(f"{SEEDS} holds no seed guide")
    return texts


def test_committed_list_covers_every_type_the_seeds_name():
    named = {match.lower() for text in seed_texts() for match in TYPE_NAME.findall(text.lower())}
    assert named, "the seeds name no instance type: the pattern is wrong"
    assert named <= set(SEED_TYPES), f"add to SEED_TYPES: {sorted(named - set(SEED_TYPES))}"


def test_the_seeds_current_hardware_is_m5a_large():
    assert any("AMD EPYC 7571" in text and "7936MiB" in text.replace(" ", "") for text in seed_texts())
    spec = catalog.get("m5a.large")
    assert (spec.vcpus, spec.memory_mib, spec.accelerator) == (2, 8192, None)  # 7936 MiB is what the OS reports


@pytest.mark.parametrize(("instance_type", "usd"), sorted(SEED_TYPES.items()))
def test_seed_type_is_in_the_catalog_with_its_us_east_1_price(instance_type, usd):
    spec = catalog.get(instance_type)
    assert spec.offered_in("us-east-1")
    assert spec.on_demand_price("us-east-1") == usd


@pytest.mark.parametrize("family", SEED_FAMILIES)
def test_every_size_of_a_seed_series_is_in_the_catalog_with_its_price_or_none(family):
    specs = catalog.filter(family=family)
    assert specs
    for spec in specs:
        price = spec.on_demand_price("us-east-1")
        if spec.instance_type in UNPRICED:
            assert price is None, spec.instance_type
        elif spec.offered_in("us-east-1"):
            assert price is not None and price > 0, spec.instance_type


def test_seed_facts_match_the_catalog():
    """The facts seed 004 states for its candidates, as literals."""
    p3 = catalog.get("p3.2xlarge")
    assert (p3.accelerator.count, p3.accelerator.name, p3.accelerator.memory_gib_per_device) == (1, "V100", 16)
    assert (p3.vcpus, p3.memory_gib) == (8, 61)
    assert (catalog.get("g4dn.xlarge").vcpus, catalog.get("g4dn.xlarge").memory_gib) == (4, 16)
    assert (catalog.get("inf1.xlarge").vcpus, catalog.get("inf1.xlarge").memory_gib) == (4, 8)
    assert (catalog.get("trn1.2xlarge").vcpus, catalog.get("trn1.2xlarge").memory_gib) == (8, 32)
    assert (catalog.get("c6i.8xlarge").vcpus, catalog.get("c6i.8xlarge").memory_gib) == (32, 64)
