"""The bundled catalog against its sources: moto's real EC2 API snapshot, the older snapshots copied into
supplements.json for the types moto 5.2.5 lacks, and the public price CSV.

Every check runs over every type (not a sample), and reads the sources independently of the generator.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import boto3
import moto
import pytest
from moto import mock_aws

from mlcdk import ConfigurationError
from mlcdk.fetch import refresh
from mlcdk.presets import catalog
from mlcdk.presets.catalog import load_catalog
from tests.harness import ROOT

pytestmark = pytest.mark.usefixtures("moto_without_sample_amis")  # no test here launches an instance

MOTO_EC2 = Path(moto.__file__).parent / "ec2" / "resources"
PRICE_CSV = ROOT / "data" / "prices" / "aws-ml-instance-prices.csv"
SHARED_PRICE_CSV = ROOT.parent / "shared" / "data" / "aws-ml-instance-prices.csv"
ACCELERATOR_SECTIONS = ("GpuInfo", "NeuronInfo", "InferenceAcceleratorInfo", "FpgaInfo", "MediaAcceleratorInfo")
PATCHED = {"p5.4xlarge", "p5en.48xlarge", "p4de.24xlarge", "trn2.3xlarge", "trn2.48xlarge", "trn2u.48xlarge"}
SUPPLEMENTS = ROOT / "mlcdk" / "presets" / "data" / "supplements.json"
#: CPU-only families the catalog keeps: inference (c7g, c7gn, c7i) and the seed guides' baselines (c6i, m5a).
CPU_FAMILIES = ("c6i", "c7g", "c7gn", "c7i", "m5a")
#: The API describes trn2u.48xlarge without NeuronInfo; a patch supplies its accelerator.
ACCELERATOR_ADDED_BY_PATCH = {"trn2u.48xlarge"}
#: Types moto 5.2.5 lacks, and the older moto snapshot each was copied from (scripts/catalog_supplements.py).
SUPPLEMENTED = {
    **{f"p3.{size}": "moto 5.1.22" for size in ("2xlarge", "8xlarge", "16xlarge")},
    **{name: "moto 5.0.0" for name in ("g3.4xlarge", "g3.8xlarge", "g3.16xlarge", "g3s.xlarge")},
    **{f"g4ad.{size}": "moto 5.2.1" for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "dl1.24xlarge": "moto 5.2.1",
}

CATALOG = catalog.default_catalog()


@pytest.fixture(scope="module")
def api_types() -> dict[str, dict]:
    return json.load(gzip.open(MOTO_EC2 / "instance_types.json.gz"))


@pytest.fixture(scope="module")
def api_offerings() -> dict[str, dict[str, set[str]]]:
    """{type: {region: {AZ IDs}}} read straight from moto's offering files."""
    offerings: dict[str, dict[str, set[str]]] = {}
    for path in sorted((MOTO_EC2 / "instance_type_offerings" / "availability-zone-id").glob("*.json.gz")):
        region = path.name.removesuffix(".json.gz")
        for offer in json.load(gzip.open(path)):
            offerings.setdefault(offer["InstanceType"], {}).setdefault(region, set()).add(offer["Location"])
    return offerings


@pytest.fixture(scope="module")
def supplements() -> dict[str, dict]:
    return json.loads(SUPPLEMENTS.read_text())["instance_types"]


@pytest.fixture(scope="module")
def csv_rows() -> list[dict[str, str]]:
    with PRICE_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Coverage and facts, for every type
# --------------------------------------------------------------------------------------------


def test_catalog_covers_every_accelerated_and_cpu_type_the_api_offers_plus_the_supplements(api_types, api_offerings):
    expected = {
        name for name, raw in api_types.items()
        if (any(s in raw for s in ACCELERATOR_SECTIONS) or name.split(".")[0] in CPU_FAMILIES
            or name in ACCELERATOR_ADDED_BY_PATCH)
        and api_offerings.get(name)
    }
    assert not set(SUPPLEMENTED) & set(api_types)  # moto 5.2.5 lacks every supplemented type
    assert set(CATALOG.names()) == expected | set(SUPPLEMENTED)
    families = {spec.family for spec in CATALOG}
    assert {"trn1", "trn1n", "trn2", "trn2u", "inf1", "inf2", "p3", "p4d", "p5", "p5en", "g3", "g3s", "g4ad", "g5",
            "g6", "g6e", "dl1", "c6i", "c7g", "c7gn", "c7i", "m5a"} <= families
    assert len(catalog.filter(family="c6i")) == 10 and len(catalog.filter(family="m5a")) == 8


def test_types_moto_lacks_come_verbatim_from_a_named_older_snapshot(supplements):
    assert set(supplements) == set(SUPPLEMENTED)
    for name, version in SUPPLEMENTED.items():
        spec = catalog.get(name)
        assert f"{version} bundled snapshot of real EC2 API output" in spec.specs_source, name
        assert f"{version} bundled snapshot" in spec.offerings_source, name
        assert supplements[name]["describe_instance_types"]["InstanceType"] == name
    api_spec = catalog.get("trn1.32xlarge")
    assert (api_spec.specs_source, api_spec.offerings_source) == (CATALOG.provenance.specs_source,
                                                                  CATALOG.provenance.offerings_source)


@pytest.mark.parametrize(("instance_type", "accelerator", "count", "gib_each", "vcpus", "memory_gib"), [
    ("p3.2xlarge", "V100", 1, 16, 8, 61),  # the seed guide: 1 V100, 8 vCPUs, 61 GiB
    ("p3.8xlarge", "V100", 4, 16, 32, 244),
    ("p3.16xlarge", "V100", 8, 16, 64, 488),
    ("g3s.xlarge", "M60", 1, 8, 4, 30.5),
    ("g3.4xlarge", "M60", 1, 8, 16, 122),
    ("g3.8xlarge", "M60", 2, 8, 32, 244),
    ("g3.16xlarge", "M60", 4, 8, 64, 488),
    ("g4ad.xlarge", "Radeon Pro V520", 1, 8, 4, 16),
    ("g4ad.16xlarge", "Radeon Pro V520", 4, 8, 64, 256),
    ("dl1.24xlarge", "Gaudi HL-205", 8, 32, 96, 768),
    ("trn2u.48xlarge", "Trainium2", 16, 96, 192, 2048),
])
def test_facts_of_the_added_accelerated_types(instance_type, accelerator, count, gib_each, vcpus, memory_gib):
    """Literals from the sources: the seed guide and the price CSV's columns agree with the API snapshots."""
    spec = catalog.get(instance_type)
    acc = spec.accelerator
    assert (acc.name, acc.count, acc.memory_gib_per_device) == (accelerator, count, gib_each)
    assert (spec.vcpus, spec.memory_gib) == (vcpus, memory_gib)


def test_added_types_agree_with_the_price_data_columns(csv_rows):
    """The price CSV (SkyPilot, from a later DescribeInstanceTypes) is an independent check of the older snapshots."""
    checked = set()
    for row in csv_rows:
        name = row["InstanceType"]
        if name not in SUPPLEMENTED or name in checked:
            continue
        spec = catalog.get(name)
        assert spec.vcpus == float(row["vCPUs"]) and spec.memory_gib == float(row["MemoryGiB"]), name
        assert (spec.accelerator.name, spec.accelerator.count) == (row["AcceleratorName"], float(row["AcceleratorCount"]))
        checked.add(name)
    assert checked == set(SUPPLEMENTED) - {"g3.4xlarge", "g3.8xlarge", "g3.16xlarge", "g3s.xlarge"}  # no g3 rows


def test_g3_has_no_price_anywhere_and_the_seed_types_have_theirs():
    for name in ("g3.4xlarge", "g3.8xlarge", "g3.16xlarge", "g3s.xlarge"):
        spec = catalog.get(name)
        assert spec.offered_in("us-east-1") and all(spec.on_demand_price(r) is None for r in spec.regions), name
        assert all(not spec.spot_prices(r) for r in spec.regions), name
    assert catalog.get("p3.2xlarge").on_demand_price("us-east-1") == 3.06
    assert catalog.get("dl1.24xlarge").on_demand_price("us-east-1") == 13.10904
    assert catalog.get("g4ad.xlarge").on_demand_price("us-east-1") == 0.37853
    assert catalog.get("trn2u.48xlarge").on_demand_price("ap-south-2") is None  # no trn2u rows in the price data


def test_previous_generation_is_the_sources_current_generation_flag(api_types, supplements):
    for spec in CATALOG:
        raw = api_types.get(spec.instance_type) or supplements[spec.instance_type]["describe_instance_types"]
        assert spec.previous_generation is (not raw["CurrentGeneration"]), spec.instance_type
    assert catalog.get("g5.xlarge").previous_generation  # moto 5.2.5's API snapshot: CurrentGeneration false
    assert not catalog.get("p3.2xlarge").previous_generation  # moto 5.1.22's: CurrentGeneration true
    assert not catalog.get("trn1.32xlarge").previous_generation


def test_every_spec_matches_the_api_snapshot(api_types, supplements):
    for spec in CATALOG:
        raw = api_types.get(spec.instance_type) or supplements[spec.instance_type]["describe_instance_types"]
        network = raw["NetworkInfo"]
        assert spec.vcpus == raw["VCpuInfo"]["DefaultVCpus"], spec.instance_type
        assert spec.memory_mib == raw["MemoryInfo"]["SizeInMiB"], spec.instance_type
        assert set(spec.architectures) == set(raw["ProcessorInfo"]["SupportedArchitectures"])
        assert spec.efa_supported == network.get("EfaSupported", False), spec.instance_type
        assert spec.maximum_efa_interfaces == network.get("EfaInfo", {}).get("MaximumEfaInterfaces", 0)
        assert spec.maximum_network_cards == network["MaximumNetworkCards"]
        assert [c.index for c in spec.network_cards] == sorted(c["NetworkCardIndex"] for c in network["NetworkCards"])
        assert spec.network_performance == network["NetworkPerformance"]
        assert set(spec.placement_strategies) == set(raw.get("PlacementGroupInfo", {}).get("SupportedStrategies", []))
        assert spec.spot_supported == ("spot" in raw["SupportedUsageClasses"])
        assert spec.current_generation == raw["CurrentGeneration"]
        if spec.instance_type in PATCHED:
            continue
        section = next((s for s in ("NeuronInfo", "GpuInfo", "InferenceAcceleratorInfo", "FpgaInfo", "MediaAcceleratorInfo")
                        if s in raw), None)
        if section is None:
            assert spec.accelerator is None, spec.instance_type
            continue
        items = {"NeuronInfo": "NeuronDevices", "GpuInfo": "Gpus", "FpgaInfo": "Fpgas"}.get(section, "Accelerators")
        device = raw[section][items][0]
        assert spec.accelerator.count == device["Count"], spec.instance_type
        assert spec.accelerator.name == device["Name"], spec.instance_type
        assert spec.accelerator.memory_mib_per_device == device.get("MemoryInfo", {}).get("SizeInMiB")
        assert spec.accelerator.kind == {"NeuronInfo": "neuron", "GpuInfo": "gpu"}.get(section, "other")
        if section == "NeuronInfo":
            assert spec.accelerator.neuron_cores == device["CoreInfo"]["Count"] * device["Count"]


def test_offerings_match_the_api_snapshot_for_every_type_and_region(api_offerings, supplements):
    for spec in CATALOG:
        if spec.instance_type in supplements:
            expected = {r: set(azs) for r, azs in supplements[spec.instance_type]["offerings"].items()}
        else:
            expected = {region: azs for region, azs in api_offerings[spec.instance_type].items()}
        assert {r: set(spec.offered_azs(r)) for r in spec.regions} == expected, spec.instance_type
    assert catalog.get("dl1.24xlarge").offered_azs("us-east-1") == ("use1-az2",)


@pytest.mark.parametrize(("instance_type", "interfaces", "cards"), [
    ("trn1.32xlarge", 8, 8), ("trn1n.32xlarge", 16, 16), ("trn2.48xlarge", 16, 16), ("p4d.24xlarge", 4, 4),
    ("p4de.24xlarge", 4, 4), ("p5.48xlarge", 32, 32), ("p5en.48xlarge", 16, 16), ("p6-b200.48xlarge", 8, 8),
])
def test_efa_interface_counts_of_the_training_types(instance_type, interfaces, cards):
    spec = catalog.get(instance_type)
    assert (spec.efa_supported, spec.maximum_efa_interfaces, spec.maximum_network_cards) == (True, interfaces, cards)
    assert spec.supports_placement("cluster")


def test_trn1_32xlarge_is_offered_only_in_some_az_ids():
    spec = catalog.get("trn1.32xlarge")
    assert spec.offered_azs("us-east-1") == ("use1-az4", "use1-az5", "use1-az6")
    assert spec.offered_azs("us-west-2") == ("usw2-az1", "usw2-az4")
    assert not spec.offered_in("eu-west-1") and spec.offered_azs("eu-west-1") == ()


# --------------------------------------------------------------------------------------------
# Known API errors, each patched and recorded with its source
# --------------------------------------------------------------------------------------------


def raw_entry(api_types, name, mutate):
    raw = json.loads(json.dumps(api_types[name]))
    mutate(raw)
    return refresh.apply_patches(refresh.normalize_spec(raw), refresh.load_patches())


def test_p5_4xlarge_reported_with_zero_gpus_is_patched_to_one_h100(api_types):
    def as_api_reported(raw):
        raw["GpuInfo"]["Gpus"][0]["Count"] = 0
    spec = raw_entry(api_types, "p5.4xlarge", as_api_reported)
    assert (spec["accelerator"]["count"], spec["accelerator"]["name"]) == (1, "H100")
    assert spec["patches"][0]["api_reported"]["count"] == 0
    assert catalog.get("p5.4xlarge").accelerator.count == 1


def test_p5en_reported_as_nvidia_is_patched_to_h200(api_types):
    def as_api_reported(raw):
        raw["GpuInfo"]["Gpus"][0]["Name"] = "NVIDIA"
    spec = raw_entry(api_types, "p5en.48xlarge", as_api_reported)
    assert spec["accelerator"]["name"] == "H200"
    assert spec["patches"][0]["api_reported"]["name"] == "NVIDIA"
    assert catalog.get("p5en.48xlarge").accelerator.name == "H200"


def test_p4de_is_the_80_gb_a100_and_p4d_the_40_gb_one(api_types):
    def as_40gb(raw):
        raw["GpuInfo"]["Gpus"][0]["MemoryInfo"]["SizeInMiB"] = 40960
    assert raw_entry(api_types, "p4de.24xlarge", as_40gb)["accelerator"]["memory_mib_per_device"] == 81920
    p4de, p4d = catalog.get("p4de.24xlarge").accelerator, catalog.get("p4d.24xlarge").accelerator
    assert (p4de.name, p4de.memory_gib_per_device, p4d.memory_gib_per_device) == ("A100", 80, 40)


def test_trn2u_reported_without_neuron_info_gets_its_trainium2_devices(api_types):
    assert "NeuronInfo" not in api_types["trn2u.48xlarge"]
    spec = raw_entry(api_types, "trn2u.48xlarge", lambda raw: None)
    assert spec["accelerator"] == {"kind": "neuron", "manufacturer": "AWS", "name": "Trainium2", "count": 16,
                                   "memory_mib_per_device": 98304, "cores_per_device": 8}
    assert spec["patches"][0]["api_reported"]["count"] is None
    trn2u = catalog.get("trn2u.48xlarge")
    assert trn2u.accelerator.neuron_cores == 128 and "neuron" in trn2u.patches[0].source
    assert trn2u.offered_azs("ap-south-2") == ("aps2-az1", "aps2-az2", "aps2-az3")


def test_trn2_device_memory_follows_the_neuron_docs_not_the_api(api_types):
    spec = raw_entry(api_types, "trn2.48xlarge", lambda raw: None)
    assert spec["patches"][0]["api_reported"]["memory_mib_per_device"] == 524288
    trn2 = catalog.get("trn2.48xlarge").accelerator
    assert (trn2.memory_gib_per_device, trn2.total_memory_gib) == (96, 1536)
    assert "neuron" in catalog.get("trn2.48xlarge").patches[0].source


def test_every_patch_carries_a_source_and_a_reason():
    for patch in refresh.load_patches():
        assert patch.source.startswith("https://") and len(patch.reason) > 20


# --------------------------------------------------------------------------------------------
# Prices against the public price data
# --------------------------------------------------------------------------------------------


def test_price_data_is_the_shared_public_file():
    if not SHARED_PRICE_CSV.exists():
        pytest.skip("../shared/data is not beside this checkout")
    assert PRICE_CSV.read_bytes() == SHARED_PRICE_CSV.read_bytes()


def test_every_catalog_price_matches_the_price_data(csv_rows):
    checked = 0
    for row in csv_rows:
        name, region, az = row["InstanceType"], row["Region"], row["AvailabilityZone"]
        if name not in CATALOG or not catalog.get(name).offered_in(region):
            continue
        spec = catalog.get(name)
        assert spec.on_demand_price(region) == (float(row["Price"]) if row["Price"] else None), (name, region)
        if row["SpotPrice"] and catalog.regional_az_id(az):
            assert spec.spot_price(region, az) == float(row["SpotPrice"]), (name, region, az)
        elif row["SpotPrice"]:  # a Local or Wavelength Zone: never a regional cluster's price
            assert spec.spot_price(region, az) is None, (name, region, az)
        checked += 1
    assert checked > 3000


def test_prices_missing_from_the_data_are_unknown_never_zero(csv_rows):
    listed = {(r["InstanceType"], r["Region"]) for r in csv_rows if r["Price"]}
    for spec in CATALOG:
        for region in spec.regions:
            price = spec.on_demand_price(region)
            assert price is None or price > 0
            if (spec.instance_type, region) not in listed:
                assert price is None, (spec.instance_type, region)
    assert all(catalog.get("p5e.48xlarge").on_demand_price(r) is None for r in catalog.get("p5e.48xlarge").regions)
    assert catalog.get("g7e.2xlarge").on_demand_price("us-east-1") is None  # family newer than the price data


def test_spot_price_of_a_region_is_its_cheapest_az_sample():
    spec = catalog.get("trn1.32xlarge")
    samples = spec.spot_prices("us-east-1")
    assert set(samples) <= set(spec.offered_azs("us-east-1")) and samples
    assert spec.spot_price("us-east-1") == min(samples.values())
    assert spec.spot_price("eu-west-1") is None


def test_seed_price_claims_checked_against_the_data():
    """The seed guide says Trn1 at $21/h and Inf2 at $14/h; the public data says otherwise (us-east-1)."""
    assert catalog.get("trn1.32xlarge").on_demand_price("us-east-1") == pytest.approx(21.50)
    assert catalog.get("inf2.48xlarge").on_demand_price("us-east-1") == pytest.approx(12.98127)


# --------------------------------------------------------------------------------------------
# The committed snapshot is exactly what the generator produces
# --------------------------------------------------------------------------------------------


def test_committed_snapshot_is_exactly_what_the_offline_generator_produces(tmp_path):
    committed = json.loads((catalog.DATA_DIR / "instance_types.json").read_text())
    prices_doc = json.loads((catalog.DATA_DIR / "prices.json").read_text())
    source = f"moto {moto.__version__} bundled snapshot of real EC2 API output"
    provenance = catalog.Provenance.dated(f"DescribeInstanceTypes: {source}",
                                          f"DescribeInstanceTypeOfferings (availability-zone-id): {source}",
                                          refresh.describe_price_source(PRICE_CSV),
                                          dt.date.fromisoformat(committed["as_of"]))
    assert prices_doc["source"] == provenance.prices_source
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        snapshot = refresh.refresh(session, price_csv=PRICE_CSV, provenance=provenance)
    refresh.write_snapshot(snapshot, tmp_path)
    for name in catalog.SNAPSHOT_FILES:
        assert (tmp_path / name).read_bytes() == (catalog.DATA_DIR / name).read_bytes(), name


# --------------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------------


def test_unknown_instance_type_suggests_close_matches():
    with pytest.raises(ConfigurationError, match=r"unknown instance type 'p5.48xlage'; did you mean 'p5.48xlarge'"):
        catalog.get("p5.48xlage")
    with pytest.raises(ConfigurationError, match=r"list them with `mlcdk catalog list`"):
        catalog.get("zzz")


def test_filter_by_family_accelerator_region_and_memory():
    assert [s.instance_type for s in catalog.filter(family="trn1")] == ["trn1.2xlarge", "trn1.32xlarge"]
    trainium = catalog.filter(accelerator="trainium")
    assert {s.family for s in trainium} == {"trn1", "trn1n", "trn2", "trn2u"}
    assert {s.family for s in catalog.filter(accelerator="inferentia")} == {"inf1", "inf2"}
    assert all(s.accelerator.manufacturer == "NVIDIA" for s in catalog.filter(accelerator="nvidia"))
    assert {s.family for s in catalog.filter(accelerator="none")} == set(CPU_FAMILIES)
    in_region = catalog.filter(accelerator="trainium", region="us-west-2")
    assert all(s.offered_in("us-west-2") for s in in_region) and in_region
    big = catalog.filter(min_accelerator_memory_gib=1000)
    assert big and all(s.accelerator.total_memory_gib >= 1000 for s in big)
    with pytest.raises(ConfigurationError, match="unknown region 'mars-1'"):
        catalog.filter(region="mars-1")


def test_instance_types_and_families_are_case_insensitive():
    assert catalog.get("P3.2XLARGE") is catalog.get("p3.2xlarge")
    assert catalog.get(" Trn1.32xlarge ").instance_type == "trn1.32xlarge"
    assert "M5A.Large" in CATALOG and "m5a.huge" not in CATALOG and 3 not in CATALOG
    assert [s.instance_type for s in catalog.filter(family="TRN1")] == ["trn1.2xlarge", "trn1.32xlarge"]
    assert CATALOG.check_family("G4AD") == "g4ad"


def test_unknown_family_is_refused_with_close_matches():
    with pytest.raises(ConfigurationError, match=r"family: unknown family 'p9'; did you mean 'p5' or 'p3'\?"):
        catalog.filter(family="p9")
    with pytest.raises(ConfigurationError, match=r"--family: unknown family 'zz'; known families: c6i, c7g"):
        CATALOG.check_family("zz", "--family")


def test_mlcdk_catalog_names_the_snapshot_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(catalog.CATALOG_ENV, raising=False)
    assert catalog.catalog_directory() == catalog.DATA_DIR
    for name in catalog.SNAPSHOT_FILES:
        shutil.copy(catalog.DATA_DIR / name, tmp_path / name)
    monkeypatch.setenv("MLCDK_CATALOG", str(tmp_path))
    assert catalog.catalog_directory() == tmp_path
    (tmp_path / "prices.json").unlink()
    with pytest.raises(ConfigurationError, match=r"MLCDK_CATALOG \('.*'\) must be a directory holding .* lacks prices.json"):
        catalog.catalog_directory()


def test_packaged_price_data_is_the_repository_copy():
    """`catalog refresh --offline` outside the repository reads the gzip copy shipped in the package."""
    assert gzip.decompress(refresh.PACKAGED_PRICE_CSV.read_bytes()) == PRICE_CSV.read_bytes()
    note = PRICE_CSV.with_name("aws-ml-instance-prices.source.txt")
    assert (refresh.PACKAGED_PRICE_CSV.parent / note.name).read_bytes() == note.read_bytes()
    assert refresh.describe_price_source(refresh.PACKAGED_PRICE_CSV) == refresh.describe_price_source(PRICE_CSV)
    assert refresh.price_source_date(PRICE_CSV) == dt.date(2026, 11, 22)  # "read 2026-11-22" in the source note


def test_specs_are_frozen():
    spec = catalog.get("inf2.48xlarge")
    with pytest.raises(AttributeError):
        spec.vcpus = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.offerings["us-east-1"] = ()  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# Corrupt data files: the error names the file and the entry
# --------------------------------------------------------------------------------------------


def corrupt(tmp_path, file, edit):
    for name in catalog.SNAPSHOT_FILES:
        shutil.copy(catalog.DATA_DIR / name, tmp_path / name)
    document = json.loads((tmp_path / file).read_text())
    edit(document)
    (tmp_path / file).write_text(json.dumps(document))
    return tmp_path / file


@pytest.mark.parametrize(("file", "edit", "message"), [
    ("instance_types.json", lambda d: d["instance_types"]["trn1.32xlarge"].pop("vcpus"),
     r"instance_types\['trn1.32xlarge'\]: missing field 'vcpus'"),
    ("instance_types.json", lambda d: d["instance_types"]["p5.48xlarge"].update(efa_supported="yes"),
     r"instance_types\['p5.48xlarge'\]: field 'efa_supported' should be bool"),
    ("instance_types.json", lambda d: d["instance_types"]["g5.xlarge"]["accelerator"].update(kind="tpu"),
     r"instance_types\['g5.xlarge'\].accelerator: kind 'tpu'"),
    ("offerings.json", lambda d: d["offerings"].update({"inf2.xlarge": ["us-east-1"]}),
     r"offerings\['inf2.xlarge'\]: expected \{region: \[AZ ID"),
    ("prices.json", lambda d: d["prices"]["inf2.xlarge"]["us-east-1"].update(on_demand=0),
     r"prices\['inf2.xlarge'\]\['us-east-1'\]: on_demand 0 must be positive"),
    ("prices.json", lambda d: d["prices"]["g5.xlarge"]["us-east-1"]["spot"].update({"use1-az1": "cheap"}),
     r"prices\['g5.xlarge'\]\['us-east-1'\].spot\['use1-az1'\]: 'cheap' is not a price"),
])
def test_corrupt_snapshot_entry_names_the_file_and_the_entry(tmp_path, file, edit, message):
    path = corrupt(tmp_path, file, edit)
    with pytest.raises(ConfigurationError, match=message) as error:
        load_catalog(tmp_path)
    assert str(path) in str(error.value)


def test_snapshot_file_that_is_not_json_names_the_file(tmp_path):
    path = corrupt(tmp_path, "offerings.json", lambda d: None)
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match=rf"{path}: not valid JSON"):
        load_catalog(tmp_path)
