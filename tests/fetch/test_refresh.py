"""`mlcdk catalog refresh`: EC2 under moto, the Pricing API under botocore's Stubber (moto has none)."""
from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from typer.testing import CliRunner

from mlcdk import ConfigurationError
from mlcdk.cli import app
from mlcdk.fetch import refresh
from mlcdk.presets import catalog
from mlcdk.presets.catalog import load_catalog
from tests.harness import ROOT

pytestmark = pytest.mark.usefixtures("moto_without_sample_amis")  # no test here launches an instance

PRICE_CSV = ROOT / "data" / "prices" / "aws-ml-instance-prices.csv"
NOW = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)


def product(usd: str) -> str:
    """One Pricing API price-list entry, in the shape get_products returns (a JSON string)."""
    return json.dumps({
        "product": {"attributes": {"instanceType": "trn1.32xlarge", "regionCode": "us-west-2"}},
        "terms": {"OnDemand": {"T1": {"priceDimensions": {"D1": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}},
    })


def stub_get_products(stubber: Stubber, name: str, region: str, pages: list[list[str]]) -> None:
    for index, page in enumerate(pages):
        expected = {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100}
        if index:
            expected["NextToken"] = f"page{index}"
        answer = {"PriceList": page, "FormatVersion": "aws_v1"}
        if index + 1 < len(pages):
            answer["NextToken"] = f"page{index + 1}"
        stubber.add_response("get_products", answer, expected)


def test_on_demand_price_comes_from_get_products_across_pages():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(pricing) as stubber:
        stub_get_products(stubber, "trn1.32xlarge", "us-west-2", [[], [product("21.5000000000")]])
        prices = refresh.fetch_on_demand_prices(pricing, "us-west-2", ["trn1.32xlarge"])
        stubber.assert_no_pending_responses()
    assert prices == {"trn1.32xlarge": 21.5}


def test_get_products_filters_linux_shared_tenancy_in_the_region():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(pricing) as stubber:
        filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": "inf2.xlarge"},
                   {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"}]
        filters += [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in refresh.PRICING_FILTERS]
        stubber.add_response("get_products", {"PriceList": [product("0.0")]},
                             {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100})
        # A zero price (a reserved-capacity line, say) is not a price: the answer stays unknown.
        assert refresh.fetch_on_demand_prices(pricing, "eu-west-1", ["inf2.xlarge"]) == {}


def test_spot_price_is_the_latest_sample_per_az_id():
    ec2 = boto3.client("ec2", region_name="us-west-2", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(ec2) as stubber:
        stubber.add_response("describe_availability_zones", {"AvailabilityZones": [
            {"ZoneName": "us-west-2a", "ZoneId": "usw2-az2"}, {"ZoneName": "us-west-2b", "ZoneId": "usw2-az1"}]})
        history = [
            {"AvailabilityZone": "us-west-2b", "InstanceType": "trn1.32xlarge", "SpotPrice": "4.10",
             "Timestamp": NOW - dt.timedelta(hours=2), "ProductDescription": "Linux/UNIX"},
            {"AvailabilityZone": "us-west-2b", "InstanceType": "trn1.32xlarge", "SpotPrice": "3.90",
             "Timestamp": NOW - dt.timedelta(hours=1), "ProductDescription": "Linux/UNIX"},
        ]
        stubber.add_response("describe_spot_price_history", {"SpotPriceHistory": history}, {
            "InstanceTypes": ["trn1.32xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": NOW, "EndTime": NOW})
        assert refresh.fetch_spot_prices(ec2, ["trn1.32xlarge"], NOW) == {"trn1.32xlarge": {"usw2-az1": 3.90}}


class StubbedPricingSession:
    """A boto3 session whose pricing client is stubbed; every other client is real (moto answers EC2)."""

    def __init__(self, pricing):
        self._session = boto3.Session(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        self._pricing = pricing
        self.region_name = "us-east-1"

    def client(self, service, region_name=None):
        return self._pricing if service == "pricing" else self._session.client(service, region_name=region_name)


def test_live_refresh_runs_end_to_end_with_ec2_under_moto_and_pricing_stubbed():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    calls = []
    with mock_aws(), Stubber(pricing) as stubber:
        for _ in range(400):  # one get_products per (type, region); every type gets the same answer
            stubber.add_response("get_products", {"PriceList": [product("1.25")]})
        session = StubbedPricingSession(pricing)
        snapshot = refresh.refresh(session, price_csv=None, regions=["us-west-2"],
                                   provenance=catalog.Provenance.dated("specs", "offers", "prices", NOW.date()),
                                   progress=calls.append)
    assert calls == ["us-west-2"] * 3
    prices = snapshot["prices.json"]["prices"]
    assert prices["trn1.32xlarge"]["us-west-2"]["on_demand"] == 1.25
    # moto's spot history names AZs us-west-2b/2d; they must come back as the AZ IDs that offer the type.
    assert set(prices["trn1.32xlarge"]["us-west-2"]["spot"]) == {"usw2-az1", "usw2-az4"}
    offerings = snapshot["offerings.json"]["offerings"]
    assert set(offerings) == set(snapshot["instance_types.json"]["instance_types"])
    assert all(list(by_region) == ["us-west-2"] for by_region in offerings.values())


# --------------------------------------------------------------------------------------------
# Bad inputs to the generator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "message"), [
    ("InstanceType,Price,Region\n", r"missing column\(s\) AvailabilityZone, SpotPrice"),
    ("InstanceType,Price,SpotPrice,Region,AvailabilityZone\ng5.xlarge,abc,,us-east-1,use1-az1\n",
     r"line 2: Price 'abc' is not a number"),
    ("InstanceType,Price,SpotPrice,Region,AvailabilityZone\ng5.xlarge,1.0,-2,us-east-1,use1-az1\n",
     r"line 2: SpotPrice -2.0 is negative"),
    ("InstanceType,Price,SpotPrice,Region,AvailabilityZone\ng5.xlarge,1.0,,us-east-1,use1-az1\n"
     "g5.xlarge,1.5,,us-east-1,use1-az2\n", r"line 3: g5.xlarge in us-east-1 has two on-demand prices"),
])
def test_bad_price_csv_names_the_file_and_line(tmp_path, rows, message):
    path = tmp_path / "prices.csv"
    path.write_text(rows)
    with pytest.raises(ConfigurationError, match=message) as error:
        refresh.prices_from_csv(path, {"g5.xlarge"})
    assert str(path) in str(error.value)


@pytest.mark.parametrize(("entry", "message"), [
    ({"instance_types": ["p5.4xlarge"], "accelerator": {"count": 1}, "source": "s"}, r"patches\[0\]: missing field\(s\) reason"),
    ({"instance_types": ["p5.4xlarge"], "accelerator": {"vcpus": 1}, "source": "s", "reason": "r"},
     r"patches\[0\]: accelerator field\(s\) vcpus cannot be patched"),
])
def test_bad_patch_file_names_the_file_and_entry(tmp_path, entry, message):
    path = tmp_path / "patches.json"
    path.write_text(json.dumps({"patches": [entry]}))
    with pytest.raises(ConfigurationError, match=message):
        refresh.load_patches(path)


def test_patch_for_a_type_without_accelerator_is_refused():
    spec = {"instance_type": "c7g.xlarge", "accelerator": None, "patches": []}
    patch = refresh.Patch(("c7g.xlarge",), {"count": 1}, "s", "r")
    with pytest.raises(ConfigurationError, match="c7g.xlarge targets an accelerator, but the API reports none"):
        refresh.apply_patches(spec, [patch])


def test_a_patch_with_every_accelerator_field_supplies_a_missing_accelerator():
    whole = {"kind": "neuron", "manufacturer": "AWS", "name": "Trainium2", "count": 16,
             "memory_mib_per_device": 98304, "cores_per_device": 8}
    spec = refresh.apply_patches({"instance_type": "x.1", "accelerator": None, "patches": []},
                                 [refresh.Patch(("x.1",), whole, "s", "r")])
    assert spec["accelerator"] == whole
    assert refresh.added_accelerator_types([refresh.Patch(("x.1",), whole, "s", "r"),
                                            refresh.Patch(("y.1",), {"count": 1}, "s", "r")]) == {"x.1"}


def test_bad_patch_kind_is_refused(tmp_path):
    path = tmp_path / "patches.json"
    path.write_text(json.dumps({"patches": [{"instance_types": ["a.b"], "accelerator": {"kind": "tpu"},
                                             "source": "s", "reason": "r"}]}))
    with pytest.raises(ConfigurationError, match=r"patches\[0\]: accelerator kind 'tpu' is not gpu, neuron or other"):
        refresh.load_patches(path)


@pytest.mark.parametrize(("document", "message"), [
    ({"types": {}}, r"cannot read supplements"),
    ({"instance_types": {"p3.2xlarge": {"offerings": {}}}}, r"instance_types\['p3.2xlarge'\]: expected an object with"),
    ({"instance_types": {"p3.2xlarge": {"describe_instance_types": {"InstanceType": "p3.8xlarge"}, "offerings": {},
                                        "specs_source": "s", "offerings_source": "o"}}},
     r"describe_instance_types is not the API entry of p3.2xlarge"),
])
def test_bad_supplement_file_names_the_file_and_entry(tmp_path, document, message):
    path = tmp_path / "supplements.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match=message) as error:
        refresh.load_supplements(path)
    assert str(path) in str(error.value)


def test_the_api_answer_wins_over_a_supplement():
    """A supplement is used only for a type the queried API does not describe."""
    supplement = refresh.Supplement({"InstanceType": "trn1.2xlarge"}, {"us-west-2": ["usw2-az9"]}, "old", "old")
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        snapshot = refresh.refresh(session, price_csv=PRICE_CSV, regions=["us-west-2"], supplements={"trn1.2xlarge": supplement},
                                   provenance=catalog.Provenance.dated("specs", "offers", "prices", NOW.date()))
    entry = snapshot["instance_types.json"]["instance_types"]["trn1.2xlarge"]
    assert entry["specs_source"] is None and entry["vcpus"] == 8
    assert "usw2-az9" not in snapshot["offerings.json"]["offerings"]["trn1.2xlarge"]["us-west-2"]


# --------------------------------------------------------------------------------------------
# The CLI command
# --------------------------------------------------------------------------------------------


def test_refresh_without_credentials_refuses_clearly(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = CliRunner().invoke(app, ["catalog", "refresh"])
    assert result.exit_code == 2
    assert "no AWS credentials found" in result.output and "--offline" in result.output


def test_offline_refresh_writes_a_loadable_stamped_snapshot(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["catalog", "refresh", "--offline", "--as-of", "2026-01-02",
                                      "--region", "us-west-2", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    loaded = load_catalog(tmp_path)
    assert loaded.regions() == ("us-west-2",)
    assert loaded.get("trn1.32xlarge").on_demand_price("us-west-2") == 21.5
    assert loaded.provenance.specs_as_of == "2026-01-02" and "moto" in loaded.provenance.specs_source
    assert "skypilot-catalog" in loaded.provenance.prices_source
    # Supplemented types come along, limited to the requested region.
    assert loaded.get("p3.2xlarge").offered_azs("us-west-2") == ("usw2-az1", "usw2-az2", "usw2-az3")
    assert "moto 5.1.22" in loaded.get("p3.2xlarge").specs_source


def test_offline_refresh_outside_the_repository_uses_the_packaged_prices_and_their_date(tmp_path, monkeypatch):
    """No --prices-csv, no --as-of, no --output, run from a directory that is not the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    bundled = {name: (catalog.DATA_DIR / name).read_bytes() for name in catalog.SNAPSHOT_FILES}
    result = CliRunner().invoke(app, ["catalog", "refresh", "--offline", "--region", "eu-north-1"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "xdg" / "mlcdk" / "catalog"
    assert f"export MLCDK_CATALOG={written}" in result.output
    loaded = load_catalog(written)
    assert loaded.provenance.prices_as_of == "2026-11-22"  # the price data's date, not today's
    assert loaded.get("c6i.8xlarge").on_demand_price("eu-north-1") is not None
    assert {name: (catalog.DATA_DIR / name).read_bytes() for name in catalog.SNAPSHOT_FILES} == bundled  # untouched


def test_default_output_is_the_user_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert refresh.user_data_dir() == tmp_path / "mlcdk" / "catalog"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert refresh.user_data_dir() == tmp_path / ".local" / "share" / "mlcdk" / "catalog"


def test_price_data_without_a_date_needs_as_of(tmp_path):
    csv_path = tmp_path / "prices.csv"
    csv_path.write_text("InstanceType,Price,SpotPrice,Region,AvailabilityZone\n")
    (tmp_path / "prices.source.txt").write_text("some prices, undated\n")
    assert refresh.price_source_date(csv_path) is None
    result = CliRunner().invoke(app, ["catalog", "refresh", "--offline", "--prices-csv", str(csv_path)])
    assert result.exit_code == 2 and "--as-of is needed" in result.output and "prices.source.txt" in result.output


def test_refresh_rejects_a_bad_date():
    result = CliRunner().invoke(app, ["catalog", "refresh", "--offline", "--as-of", "yesterday"])
    assert result.exit_code == 2 and "--as-of 'yesterday' is not a date" in result.output
