"""FSx for Lustre facts: deployment types, their allowed capacities and throughput, and storage prices.

Pure Python (no aws_cdk). Read once from ``data/fsx.json`` (hand-curated, every entry with its source) into
frozen dataclasses; the rules that TrainingCluster and the app's context flag share live here, once.

>>> from mlcdk.presets import fsx
>>> fsx.capacity_problem("PERSISTENT_2", 3000)
'must be 1200, 2400 or a multiple of 2400 GiB for PERSISTENT_2'
>>> fsx.storage_price("us-east-1", "PERSISTENT_2", 125).monthly_usd(1200)
174.0
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlcdk.presets import datafile
from mlcdk.presets.catalog import DATA_DIR

DATA_FILE = DATA_DIR / "fsx.json"
#: Deployment types mlcdk builds, the default first.
BUILT_DEPLOYMENT_TYPES = ("PERSISTENT_2", "SCRATCH_2")


@dataclass(frozen=True)
class DeploymentType:
    name: str
    built: bool  #: mlcdk creates file systems of this type
    throughput_mbps_per_tib: tuple[int, ...]  #: PerUnitStorageThroughput values; empty: not settable
    first_capacities_gib: tuple[int, ...]
    capacity_multiple_gib: int
    data_repository_associations: bool
    customer_managed_key: bool  #: KmsKeyId may name a customer-managed key
    source: str

    def allows_capacity(self, gib: int) -> bool:
        return gib in self.first_capacities_gib or (gib > 0 and gib % self.capacity_multiple_gib == 0)

    @property
    def capacity_text(self) -> str:
        first = ", ".join(map(str, self.first_capacities_gib))
        return f"{first} or a multiple of {self.capacity_multiple_gib} GiB"


@dataclass(frozen=True)
class StoragePrice:
    region: str
    deployment_type: str
    throughput_mbps_per_tib: int | None
    usd_per_gb_month: float
    as_of: str
    source: str

    def monthly_usd(self, capacity_gib: int) -> float:
        """The file system's storage charge for a month: its capacity at the GB-month rate."""
        return round(capacity_gib * self.usd_per_gb_month, 2)


@dataclass(frozen=True)
class LustreFacts:
    deployment_types: dict[str, DeploymentType]
    max_data_repository_associations: int
    prices: tuple[StoragePrice, ...]
    prices_as_of: str
    data_compression_types: tuple[str, ...] = ("NONE",)
    default_data_compression: str = "NONE"


@functools.cache
def facts() -> LustreFacts:
    with datafile.reading(DATA_FILE):
        return _facts(datafile.read_document(DATA_FILE))


def _facts(doc: dict) -> LustreFacts:
    types = {name: DeploymentType(
        name=name, built=bool(entry["built"]), throughput_mbps_per_tib=tuple(entry["throughput_mbps_per_tib"]),
        first_capacities_gib=tuple(entry["capacity_gib"]["first"]), capacity_multiple_gib=entry["capacity_gib"]["multiple_of"],
        data_repository_associations=bool(entry["data_repository_associations"]),
        customer_managed_key=bool(entry["customer_managed_key"]), source=entry["source"])
        for name, entry in doc["deployment_types"].items()}
    prices_doc = doc["storage_prices"]
    prices = tuple(StoragePrice(e["region"], e["deployment_type"], e["throughput_mbps_per_tib"], float(e["usd_per_gb_month"]),
                                prices_doc["as_of"], e["source"]) for e in prices_doc["entries"])
    compression = doc["data_compression"]
    return LustreFacts(types, int(doc["max_data_repository_associations"]["value"]), prices, prices_doc["as_of"],
                       tuple(compression["values"]), compression["default"])


def deployment_type(name: str) -> DeploymentType | None:
    return facts().deployment_types.get(name)


def capacity_problem(deployment: str, gib) -> str | None:
    """Why ``gib`` cannot be the storage capacity of a ``deployment`` file system (None when it can)."""
    kind = deployment_type(deployment)
    if isinstance(gib, bool) or not isinstance(gib, int):
        return "must be a whole number of GiB"
    if kind is not None and not kind.allows_capacity(gib):
        return f"must be {kind.capacity_text} for {deployment}"
    return None


def default_throughput(deployment: str) -> int | None:
    """The lowest throughput tier of ``deployment`` (None where the type has no tier)."""
    kind = deployment_type(deployment)
    return kind.throughput_mbps_per_tib[0] if kind and kind.throughput_mbps_per_tib else None


def storage_price(region: str, deployment: str, throughput_mbps_per_tib: int | None) -> StoragePrice | None:
    """The sourced storage price, or None where mlcdk has none (never an estimate)."""
    for price in facts().prices:
        if (price.region, price.deployment_type, price.throughput_mbps_per_tib) == (region, deployment, throughput_mbps_per_tib):
            return price
    return None
