"""Build the bundled catalog snapshot from the EC2 API and price data (``mlcdk catalog refresh``).

Inputs, each stamped into the output with its source and date:

- specs: ``DescribeInstanceTypes`` (every region, merged);
- offerings: ``DescribeInstanceTypeOfferings`` by AZ ID, per region;
- prices: either the Pricing API (``get_products``) plus ``DescribeSpotPriceHistory`` (live), or a
  public price CSV (offline; see ``data/prices/README.md`` at the repository root);
- ``data/patches.json``: hand-curated corrections of known API errors, each with a source;
- ``data/supplements.json``: real API output, from older moto snapshots, for types the queried API lacks
  (each entry names its source; see ``scripts/catalog_supplements.py``).

Offline, the EC2 calls run against moto, whose bundled data is a real API snapshot. The output is
sorted, canonical JSON, so that the committed snapshot is exactly what this module produces from its
inputs (a test regenerates it and compares bytes).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.presets import datafile
from mlcdk.presets.catalog import DATA_DIR, Provenance

#: The sections of DescribeInstanceTypes that mean "this type has an accelerator".
ACCELERATOR_SECTIONS = ("GpuInfo", "NeuronInfo", "InferenceAcceleratorInfo", "FpgaInfo", "MediaAcceleratorInfo")
#: CPU families kept: small-model inference (c7g, c7gn, c7i), and the CPU types the seed guides name as
#: a baseline (c6i.8xlarge, and m5a.large, the AMD EPYC 7571 with 7936 MiB that a guide calls its current
#: hardware): every size of those two families.
CPU_FAMILIES = ("c6i", "c7g", "c7gn", "c7i", "m5a")
#: The bundled public price data (a gzip copy of ``data/prices/`` at the repository root), the default of an
#: offline refresh, so that ``--offline`` works from an installed package too.
PACKAGED_PRICE_CSV = DATA_DIR / "prices" / "aws-ml-instance-prices.csv.gz"

Progress = Callable[[str], None]


def _no_progress(_: str) -> None:
    return None


def is_catalog_type(raw: Mapping[str, Any], extra: Iterable[str] = ()) -> bool:
    """True for types the catalog covers: any accelerator section, one of CPU_FAMILIES, or a name in ``extra``
    (types whose accelerator the API omits and a patch supplies, such as trn2u.48xlarge)."""
    family = raw["InstanceType"].split(".")[0]
    return (family in CPU_FAMILIES or raw["InstanceType"] in set(extra)
            or any(section in raw for section in ACCELERATOR_SECTIONS))


# --------------------------------------------------------------------------------------------
# Normalization: one DescribeInstanceTypes entry -> the catalog's JSON record
# --------------------------------------------------------------------------------------------


def _accelerator(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The accelerator record of a type, or None for CPU-only types.

    Neuron devices come from NeuronInfo (which inf1/inf2 also report, more completely, as
    InferenceAcceleratorInfo); then GPUs; then other inference accelerators, FPGAs and media
    accelerators.
    """
    if "NeuronInfo" in raw:
        device = raw["NeuronInfo"]["NeuronDevices"][0]
        return {
            "kind": "neuron",
            "manufacturer": "AWS",
            "name": device["Name"],
            "count": device["Count"],
            "memory_mib_per_device": device.get("MemoryInfo", {}).get("SizeInMiB"),
            "cores_per_device": device.get("CoreInfo", {}).get("Count"),
        }
    if "GpuInfo" in raw:
        gpu = raw["GpuInfo"]["Gpus"][0]
        return {
            "kind": "gpu",
            "manufacturer": gpu.get("Manufacturer"),
            "name": gpu.get("Name"),
            "count": gpu.get("Count", 0),
            "memory_mib_per_device": gpu.get("MemoryInfo", {}).get("SizeInMiB"),
            "cores_per_device": None,
        }
    for section, items_key in (
        ("InferenceAcceleratorInfo", "Accelerators"),
        ("FpgaInfo", "Fpgas"),
        ("MediaAcceleratorInfo", "Accelerators"),
    ):
        if section in raw:
            item = raw[section][items_key][0]
            return {
                "kind": "other",
                "manufacturer": item.get("Manufacturer"),
                "name": item.get("Name"),
                "count": item.get("Count", 0),
                "memory_mib_per_device": item.get("MemoryInfo", {}).get("SizeInMiB"),
                "cores_per_device": None,
            }
    return None


def normalize_spec(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog record (plain JSON types) for one DescribeInstanceTypes entry."""
    network = raw.get("NetworkInfo", {})
    cards = [
        {
            "index": card["NetworkCardIndex"],
            "maximum_network_interfaces": card.get("MaximumNetworkInterfaces"),
            "baseline_bandwidth_gbps": card.get("BaselineBandwidthInGbps"),
        }
        for card in network.get("NetworkCards", [])
    ]
    return {
        "instance_type": raw["InstanceType"],
        "vcpus": raw["VCpuInfo"]["DefaultVCpus"],
        "memory_mib": raw["MemoryInfo"]["SizeInMiB"],
        "architectures": sorted(raw.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
        "accelerator": _accelerator(raw),
        "network_performance": network.get("NetworkPerformance"),
        "efa_supported": bool(network.get("EfaSupported", False)),
        "maximum_efa_interfaces": network.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0),
        "maximum_network_cards": network.get("MaximumNetworkCards", 1),
        "network_cards": sorted(cards, key=lambda c: c["index"]),
        "placement_strategies": sorted(raw.get("PlacementGroupInfo", {}).get("SupportedStrategies", [])),
        "usage_classes": sorted(raw.get("SupportedUsageClasses", [])),
        "current_generation": bool(raw.get("CurrentGeneration", False)),
        "bare_metal": bool(raw.get("BareMetal", False)),
        "patches": [],
        # None: the snapshot's own sources (the document's "source" and offerings.json's); a supplement names its own.
        "specs_source": None,
        "offerings_source": None,
    }


# --------------------------------------------------------------------------------------------
# Patches: known errors of the EC2 API, corrected explicitly
# --------------------------------------------------------------------------------------------

PATCHABLE_FIELDS = frozenset({"kind", "count", "name", "manufacturer", "memory_mib_per_device", "cores_per_device"})
#: A patch that gives every one of these fields can supply an accelerator that the API omits entirely.
ACCELERATOR_FIELDS = PATCHABLE_FIELDS


@dataclass(frozen=True)
class Patch:
    """One correction of the accelerator facts the API reports for some instance types."""

    instance_types: tuple[str, ...]
    accelerator: Mapping[str, Any]
    source: str
    reason: str


def load_patches(path: Path = DATA_DIR / "patches.json") -> list[Patch]:
    """Read and check the curated patch file. A malformed entry names the file and the entry."""
    try:
        entries = datafile.read_document(path)["patches"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path}: cannot read patches ({exc}); expected {{'patches': [...]}}") from exc
    patches = []
    for index, entry in enumerate(entries):
        where = f"{path}: patches[{index}]"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: expected an object, got {type(entry).__name__}")
        missing = {"instance_types", "accelerator", "source", "reason"} - entry.keys()
        if missing:
            raise ConfigurationError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
        unknown = set(entry["accelerator"]) - PATCHABLE_FIELDS
        if unknown:
            raise ConfigurationError(
                f"{where}: accelerator field(s) {', '.join(sorted(unknown))} cannot be patched; "
                f"allowed: {', '.join(sorted(PATCHABLE_FIELDS))}"
            )
        kind = entry["accelerator"].get("kind", "gpu")
        if kind not in ("gpu", "neuron", "other"):
            raise ConfigurationError(f"{where}: accelerator kind {kind!r} is not gpu, neuron or other")
        patches.append(
            Patch(tuple(entry["instance_types"]), dict(entry["accelerator"]), entry["source"], entry["reason"])
        )
    return patches


def added_accelerator_types(patches: Iterable[Patch]) -> set[str]:
    """Types named by a patch that supplies a whole accelerator (the API may omit it for them)."""
    return {name for patch in patches if set(patch.accelerator) == ACCELERATOR_FIELDS for name in patch.instance_types}


# --------------------------------------------------------------------------------------------
# Supplements: real API output for types the queried API lacks, from older moto snapshots
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Supplement:
    """One type's DescribeInstanceTypes entry and offerings by AZ ID, from a named older snapshot."""

    raw: Mapping[str, Any]
    offerings: Mapping[str, list[str]]
    specs_source: str
    offerings_source: str


def load_supplements(path: Path = DATA_DIR / "supplements.json") -> dict[str, Supplement]:
    """Read and check the supplement file. A malformed entry names the file and the entry."""
    try:
        entries = datafile.read_document(path)["instance_types"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path}: cannot read supplements ({exc}); expected {{'instance_types': {{...}}}}") from exc
    out = {}
    for name, entry in sorted(entries.items()):
        where = f"{path}: instance_types[{name!r}]"
        needed = {"describe_instance_types", "offerings", "specs_source", "offerings_source"}
        if not isinstance(entry, dict) or needed - entry.keys():
            raise ConfigurationError(f"{where}: expected an object with {', '.join(sorted(needed))}")
        raw = entry["describe_instance_types"]
        if not isinstance(raw, dict) or raw.get("InstanceType") != name:
            raise ConfigurationError(f"{where}: describe_instance_types is not the API entry of {name}")
        out[name] = Supplement(raw, {r: list(azs) for r, azs in entry["offerings"].items()},
                               entry["specs_source"], entry["offerings_source"])
    return out


def apply_patches(spec: dict[str, Any], patches: Iterable[Patch]) -> dict[str, Any]:
    """Apply every patch that names ``spec``'s type; record each applied patch in ``spec['patches']``.

    A patch is recorded even when the API already reports the corrected value, so the catalog shows
    that the fact was checked against the cited source. When the API reports no accelerator at all, only
    a patch that gives every accelerator field (kind, manufacturer, name, count, memory, cores) applies.
    """
    for patch in patches:
        if spec["instance_type"] not in patch.instance_types:
            continue
        if spec["accelerator"] is None:
            if set(patch.accelerator) != ACCELERATOR_FIELDS:
                raise ConfigurationError(
                    f"patch for {spec['instance_type']} targets an accelerator, but the API reports none "
                    f"(a patch that adds one must give all of {', '.join(sorted(ACCELERATOR_FIELDS))})"
                )
            spec["accelerator"] = {field: None for field in ACCELERATOR_FIELDS}
        before = {field: spec["accelerator"].get(field) for field in patch.accelerator}
        spec["accelerator"].update(patch.accelerator)
        spec["patches"].append(
            {"fields": dict(sorted(patch.accelerator.items())), "api_reported": before,
             "source": patch.source, "reason": patch.reason}
        )
    return spec


# --------------------------------------------------------------------------------------------
# EC2 calls
# --------------------------------------------------------------------------------------------


def list_regions(session: Any) -> list[str]:
    """The regions enabled for the account, from ``DescribeRegions``."""
    ec2 = session.client("ec2", region_name=session.region_name or "us-east-1")
    return sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"])


def fetch_offerings(session: Any, regions: Iterable[str], progress: Progress = _no_progress) -> dict[str, dict[str, list[str]]]:
    """``{region: {instance type: [AZ IDs]}}`` for every type, from DescribeInstanceTypeOfferings by AZ ID."""
    by_region: dict[str, dict[str, list[str]]] = {}
    for region in regions:
        offers: dict[str, list[str]] = {}
        paginator = session.client("ec2", region_name=region).get_paginator("describe_instance_type_offerings")
        for page in paginator.paginate(LocationType="availability-zone-id"):
            for offer in page["InstanceTypeOfferings"]:
                offers.setdefault(offer["InstanceType"], []).append(offer["Location"])
        if offers:
            by_region[region] = {name: sorted(set(azs)) for name, azs in offers.items()}
        progress(region)
    return by_region


def fetch_specs(
    session: Any, offered: Mapping[str, Iterable[str]], progress: Progress = _no_progress, extra: Iterable[str] = ()
) -> dict[str, dict]:
    """Raw DescribeInstanceTypes entries of the catalog types among those ``offered`` (``{region: names}``).

    Each type is described once, in the first region (by name) that offers it: the first region is
    described in full, later ones only for the names not seen yet. This keeps the call count low live
    and under moto, where one full description costs seconds. ``extra`` names types kept although the API
    reports no accelerator for them (see :func:`is_catalog_type`).
    """
    extra = set(extra)
    seen: set[str] = set()
    specs: dict[str, dict] = {}
    for region, names in sorted(offered.items()):
        wanted = sorted(set(names) - seen)
        if not wanted:
            progress(region)
            continue
        ec2 = session.client("ec2", region_name=region)
        pages = (
            ec2.get_paginator("describe_instance_types").paginate()
            if not seen
            else (ec2.describe_instance_types(InstanceTypes=wanted[i : i + 100]) for i in range(0, len(wanted), 100))
        )
        for page in pages:
            for raw in page["InstanceTypes"]:
                seen.add(raw["InstanceType"])
                if is_catalog_type(raw, extra):
                    specs.setdefault(raw["InstanceType"], raw)
        seen.update(wanted)
        progress(region)
    return specs


def catalog_offerings(
    by_region: Mapping[str, Mapping[str, list[str]]], names: Iterable[str]
) -> dict[str, dict[str, list[str]]]:
    """Re-key offerings as ``{type: {region: [AZ IDs]}}``, for ``names`` only."""
    names = set(names)
    out: dict[str, dict[str, list[str]]] = {}
    for region, offers in sorted(by_region.items()):
        for name, azs in offers.items():
            if name in names:
                out.setdefault(name, {})[region] = list(azs)
    return out


# --------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------

PRICE_CSV_COLUMNS = ("InstanceType", "Price", "SpotPrice", "Region", "AvailabilityZone")


def _price(text: str, path: Path, line: int, column: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"{path}: line {line}: {column} {text!r} is not a number") from None
    if value < 0:
        raise ConfigurationError(f"{path}: line {line}: {column} {value} is negative")
    return value


def _open_text(path: Path) -> Any:
    """A text handle on ``path``, decompressing a ``.gz`` file."""
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else path.open(newline="")


def prices_from_csv(path: Path, names: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{type: {region: {"on_demand": usd|None, "spot": {az_id: usd}}}}`` from a public price CSV.

    The CSV (plain or ``.gz``) has one row per (type, region, AZ ID); ``Price`` is the region's on-demand
    price and ``SpotPrice`` a spot sample for the AZ. Empty cells mean "no price published" and stay unknown.
    """
    prices: dict[str, dict[str, dict[str, Any]]] = {}
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = set(PRICE_CSV_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ConfigurationError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            name = row["InstanceType"]
            if name not in names:
                continue
            entry = prices.setdefault(name, {}).setdefault(row["Region"], {"on_demand": None, "spot": {}})
            on_demand = _price(row["Price"], path, line, "Price")
            if on_demand is not None:
                if entry["on_demand"] not in (None, on_demand):
                    raise ConfigurationError(
                        f"{path}: line {line}: {name} in {row['Region']} has two on-demand prices "
                        f"({entry['on_demand']} and {on_demand})"
                    )
                entry["on_demand"] = on_demand
            spot = _price(row["SpotPrice"], path, line, "SpotPrice")
            if spot is not None:
                entry["spot"][row["AvailabilityZone"]] = spot
    return prices


#: Pricing API location names are not region codes; ``regionCode`` is the filterable attribute.
PRICING_FILTERS = (
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
    ("licenseModel", "No License required"),
)


def _on_demand_usd(product_json: str) -> float | None:
    product = json.loads(product_json)
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd is not None and float(usd) > 0:
                return float(usd)
    return None


def fetch_on_demand_prices(pricing: Any, region: str, names: Iterable[str]) -> dict[str, float]:
    """On-demand Linux prices for ``names`` in ``region``, from the Pricing API (``get_products``)."""
    prices: dict[str, float] = {}
    for name in sorted(names):
        filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": name},
                   {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]
        filters += [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in PRICING_FILTERS]
        token = None
        while True:
            kwargs = {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            answer = pricing.get_products(**kwargs)
            for product in answer.get("PriceList", []):
                usd = _on_demand_usd(product)
                if usd is not None:
                    prices[name] = usd
            token = answer.get("NextToken")
            if not token:
                break
    return prices


def fetch_spot_prices(ec2: Any, names: Iterable[str], now: dt.datetime) -> dict[str, dict[str, float]]:
    """The latest Linux spot price per AZ ID for ``names``, from DescribeSpotPriceHistory."""
    zone_ids = {z["ZoneName"]: z["ZoneId"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    latest: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    paginator = ec2.get_paginator("describe_spot_price_history")
    for page in paginator.paginate(
        InstanceTypes=sorted(names), ProductDescriptions=["Linux/UNIX"], StartTime=now, EndTime=now
    ):
        for item in page["SpotPriceHistory"]:
            key = (item["InstanceType"], zone_ids.get(item["AvailabilityZone"], item["AvailabilityZone"]))
            stamp = item["Timestamp"]
            if key not in latest or stamp > latest[key][0]:
                latest[key] = (stamp, float(item["SpotPrice"]))
    spot: dict[str, dict[str, float]] = {}
    for (name, zone), (_, usd) in latest.items():
        spot.setdefault(name, {})[zone] = usd
    return spot


def fetch_prices(
    session: Any, offerings: Mapping[str, Mapping[str, list[str]]], now: dt.datetime,
    progress: Progress = _no_progress,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Live prices for every (type, region) offered: Pricing API on-demand plus the spot price history."""
    pricing = session.client("pricing", region_name="us-east-1")
    by_region: dict[str, set[str]] = {}
    for name, regions in offerings.items():
        for region in regions:
            by_region.setdefault(region, set()).add(name)
    prices: dict[str, dict[str, dict[str, Any]]] = {}
    for region, names in sorted(by_region.items()):
        on_demand = fetch_on_demand_prices(pricing, region, names)
        spot = fetch_spot_prices(session.client("ec2", region_name=region), names, now)
        for name in names:
            prices.setdefault(name, {})[region] = {"on_demand": on_demand.get(name), "spot": spot.get(name, {})}
        progress(region)
    return prices


# --------------------------------------------------------------------------------------------
# Snapshot assembly and writing
# --------------------------------------------------------------------------------------------


def build_snapshot(
    raw_specs: Mapping[str, Mapping[str, Any]],
    offerings: Mapping[str, Mapping[str, list[str]]],
    prices: Mapping[str, Mapping[str, Mapping[str, Any]]],
    patches: Iterable[Patch],
    provenance: Provenance,
    sources: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The three snapshot documents, keyed by file name. Types not offered anywhere are dropped.

    ``sources`` maps a type to its own (specs source, offerings source) where they are not the
    snapshot's (types taken from :func:`load_supplements`).
    """
    patches = list(patches)
    offered = {name for name, regions in offerings.items() if regions}
    specs = {name: apply_patches(normalize_spec(raw), patches) for name, raw in raw_specs.items() if name in offered}
    for name, (specs_source, offerings_source) in (sources or {}).items():
        if name in specs:
            specs[name]["specs_source"], specs[name]["offerings_source"] = specs_source, offerings_source
    return {
        "instance_types.json": {
            "source": provenance.specs_source, "as_of": provenance.specs_as_of,
            "patches_source": "mlcdk/presets/data/patches.json",
            "instance_types": dict(sorted(specs.items())),
        },
        "offerings.json": {
            "source": provenance.offerings_source, "as_of": provenance.offerings_as_of,
            "location_type": "availability-zone-id",
            "offerings": {name: offerings[name] for name in sorted(specs)},
        },
        "prices.json": {
            "source": provenance.prices_source, "as_of": provenance.prices_as_of,
            "currency": "USD", "unit": "per instance-hour",
            "prices": {
                name: {region: {"on_demand": p["on_demand"], "spot": dict(sorted(p["spot"].items()))}
                       for region, p in sorted(prices[name].items()) if region in offerings[name]}
                for name in sorted(specs) if name in prices
            },
        },
    }


def canonical_json(document: Any) -> str:
    """Sorted, stable JSON text: the byte form of every generated data file."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_snapshot(snapshot: Mapping[str, Any], directory: Path = DATA_DIR) -> list[Path]:
    written = []
    for name, document in snapshot.items():
        path = directory / name
        path.write_text(canonical_json(document))
        written.append(path)
    return written


def refresh(
    session: Any,
    *,
    price_csv: Path | None,
    provenance: Provenance,
    regions: Iterable[str] | None = None,
    progress: Progress = _no_progress,
    supplements: Mapping[str, Supplement] | None = None,
) -> dict[str, dict[str, Any]]:
    """Query EC2 (and the Pricing API when ``price_csv`` is None) and assemble a snapshot.

    ``progress`` is called with a region name after each region's calls, for a progress bar.
    Regions where no catalog type is offered are left out. Types the API does not describe are taken
    from ``supplements`` (default: data/supplements.json), each with its own source; data/patches.json corrects
    what the API gets wrong.
    """
    patches = load_patches()
    supplements = load_supplements() if supplements is None else supplements
    regions = sorted(regions) if regions is not None else list_regions(session)
    by_region = fetch_offerings(session, regions, progress)
    raw_specs = fetch_specs(session, by_region, progress, extra=added_accelerator_types(patches))
    offerings = catalog_offerings(by_region, raw_specs)
    sources = {}
    for name, supplement in supplements.items():
        if name in raw_specs:  # the API describes it: its answer wins
            continue
        raw_specs[name] = dict(supplement.raw)
        offerings[name] = {r: list(azs) for r, azs in sorted(supplement.offerings.items()) if r in regions}
        sources[name] = (supplement.specs_source, supplement.offerings_source)
    if price_csv is not None:
        prices = prices_from_csv(price_csv, set(raw_specs))
    else:
        now = dt.datetime.combine(dt.date.fromisoformat(provenance.prices_as_of), dt.time(), tzinfo=dt.timezone.utc)
        prices = fetch_prices(session, offerings, now, progress)
    return build_snapshot(raw_specs, offerings, prices, patches, provenance, sources)


def price_note(price_csv: Path) -> Path:
    """``<name>.source.txt`` beside ``<name>.csv`` or ``<name>.csv.gz``."""
    stem = price_csv.name.removesuffix(".gz").removesuffix(".csv")
    return price_csv.with_name(stem + ".source.txt")


def describe_price_source(price_csv: Path) -> str:
    """The provenance line of a price CSV: the first paragraph of ``<csv>.source.txt`` beside it, if any."""
    note = price_note(price_csv)
    if note.is_file():
        return " ".join(note.read_text().split())
    return f"price file {price_csv.name}"


def price_source_date(price_csv: Path) -> dt.date | None:
    """The date of the price data: the first YYYY-MM-DD in its ``.source.txt`` (the day it was read), or None."""
    note = price_note(price_csv)
    match = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", note.read_text()) if note.is_file() else None
    return dt.date.fromisoformat(match.group(1)) if match else None


def package_price_data(source: Path, directory: Path = PACKAGED_PRICE_CSV.parent) -> Path:
    """Copy a price CSV and its ``.source.txt`` into the package as ``<name>.csv.gz`` (deterministic bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (source.name + ".gz")
    target.write_bytes(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0))
    note = price_note(source)
    if note.is_file():
        (directory / note.name).write_bytes(note.read_bytes())
    return target


def user_data_dir() -> Path:
    """Where ``mlcdk catalog refresh`` writes by default: ``$XDG_DATA_HOME/mlcdk/catalog``, else
    ``~/.local/share/mlcdk/catalog``. Never the installed package."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mlcdk" / "catalog"
