"""The mlcdk CLI: tables and JSON from the library, exit 2 with one clear line on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from mlcdk.cli import app
from mlcdk.presets import catalog
from tests.harness import cdk_modules_loaded_by

runner = CliRunner()


def test_catalog_list_json_filters_and_prices_in_the_region():
    result = runner.invoke(app, ["catalog", "list", "--accelerator", "trainium", "--region", "us-east-1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    rows = {r["instance_type"]: r for r in document["instance_types"]}
    assert set(rows) == {s.instance_type for s in catalog.filter(accelerator="trainium", region="us-east-1")}
    assert rows["trn1.32xlarge"]["on_demand_usd_per_hour"] == 21.5
    assert document["prices_as_of"] == catalog.default_catalog().provenance.prices_as_of


def test_catalog_list_table_shows_the_price_date():
    result = runner.invoke(app, ["catalog", "list", "--family", "inf2", "--region", "us-east-1"])
    assert result.exit_code == 0
    assert "inf2.48xlarge" in result.output and "$12.9813" in result.output
    assert f"Prices as of {catalog.default_catalog().provenance.prices_as_of}" in result.output


def test_catalog_show_prints_every_fact_with_sources():
    result = runner.invoke(app, ["catalog", "show", "p5.4xlarge", "--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    for fact in ("1x NVIDIA H100", "80 GiB each", "EFA", "patched", "aws.amazon.com/ec2/instance-types/p5", "moto"):
        assert fact in result.output


def test_catalog_show_json_has_offerings_prices_and_provenance():
    result = runner.invoke(app, ["catalog", "show", "trn1.32xlarge", "--json"])
    document = json.loads(result.output)
    assert document["offerings"]["us-west-2"] == ["usw2-az1", "usw2-az4"]
    assert document["prices"]["us-east-1"]["on_demand"] == 21.5
    assert document["accelerator"]["count"] == 16 and document["provenance"]["prices_as_of"]


def test_unknown_type_exits_2_with_one_line_and_close_matches():
    result = runner.invoke(app, ["catalog", "show", "trn1.32xlarg"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: instance_type: unknown instance type 'trn1.32xlarg'; did you mean 'trn1.32xlarge' "
                     "or 'trn1n.32xlarge' or 'trn1.2xlarge'?"]


def test_unknown_region_exits_2():
    result = runner.invoke(app, ["catalog", "list", "--region", "us-east-9"])
    assert result.exit_code == 2 and "--region: unknown region 'us-east-9'" in result.output


def test_unknown_family_exits_2_with_one_line_and_suggestions():
    result = runner.invoke(app, ["catalog", "list", "--family", "trn9"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: --family: unknown family 'trn9'; did you mean 'trn2' or 'trn1' or 'trn2u'?"]


def test_catalog_types_and_families_are_case_insensitive():
    listed = runner.invoke(app, ["catalog", "list", "--family", "INF2", "--json"])
    assert listed.exit_code == 0 and {r["instance_type"] for r in json.loads(listed.output)["instance_types"]} == {
        "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge"}
    shown = runner.invoke(app, ["catalog", "show", "P3.2XLARGE", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["instance_type"] == "p3.2xlarge"


def test_one_instance_type_is_singular():
    result = runner.invoke(app, ["catalog", "list", "--family", "dl1"])
    assert result.exit_code == 0 and result.output.splitlines()[0].strip() == "1 instance type"
    assert "2 instance types" in runner.invoke(app, ["catalog", "list", "--family", "trn1"]).output


def test_catalog_show_names_the_source_and_the_generation():
    p3 = runner.invoke(app, ["catalog", "show", "p3.2xlarge", "--region", "us-east-1"])
    assert p3.exit_code == 0, p3.output
    for fact in ("1x NVIDIA V100", "16 GiB each", "8 / 61 GiB", "moto 5.1.22", "$3.0600", "current"):
        assert fact in p3.output, fact
    g5 = runner.invoke(app, ["catalog", "show", "g5.xlarge", "--json"])
    assert json.loads(g5.output)["previous_generation"] is True
    g3 = json.loads(runner.invoke(app, ["catalog", "show", "g3.4xlarge", "--json"]).output)
    assert g3["prices"]["us-east-1"] == {"on_demand": None, "spot": {}} and "moto 5.0.0" in g3["specs_source"]
    listed = json.loads(runner.invoke(app, ["catalog", "list", "--family", "g5", "--json"]).output)
    assert all(row["previous_generation"] for row in listed["instance_types"])
    table = runner.invoke(app, ["catalog", "list", "--family", "g5"]).output
    assert "gen." in table and table.count("prev") == 8


def test_a_refreshed_snapshot_is_used_through_mlcdk_catalog(tmp_path):
    for name in ("instance_types.json", "offerings.json", "prices.json"):
        (tmp_path / name).write_bytes((catalog.DATA_DIR / name).read_bytes())
    prices = json.loads((tmp_path / "prices.json").read_text())
    prices["prices"]["trn1.32xlarge"]["us-east-1"]["on_demand"] = 19.99
    (tmp_path / "prices.json").write_text(json.dumps(prices))
    env = {**os.environ, "MLCDK_CATALOG": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "mlcdk.cli", "catalog", "show", "trn1.32xlarge", "--json"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prices"]["us-east-1"]["on_demand"] == 19.99


def test_presets_list_and_show():
    listing = runner.invoke(app, ["presets", "list", "--json"])
    assert "llm-pretrain-trainium" in json.loads(listing.output)
    shown = json.loads(runner.invoke(app, ["presets", "show", "llm-serving-inferentia2"]).output)
    assert (shown["instance_type"], shown["purchase_option"]) == ("inf2.xlarge", "mixed")
    missing = runner.invoke(app, ["presets", "show", "serving-nvdia"])
    assert missing.exit_code == 2 and "did you mean 'serving-nvidia'" in missing.output


def test_catalog_and_presets_commands_never_import_aws_cdk():
    code = ("from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "for args in (['catalog','list','--region','us-west-2'], ['catalog','show','trn1.32xlarge'], ['presets','list']):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0\n")
    assert cdk_modules_loaded_by(code) == []


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "mlcdk.cli", "catalog", "show", "inf2.xlarge", "--json"],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["accelerator"]["name"] == "Inferentia2"
