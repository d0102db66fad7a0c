"""The mlcdk CLI: tables and JSON from the library, exit 2 with one clear line on bad input."""
from __future__ import annotations

import json
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
    assert result.exit_code == 2 and "unknown region 'us-east-9'" in result.output


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
