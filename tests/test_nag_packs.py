"""mlcdk's table of cdk-nag packs (mlcdk/presets/data/nag_packs.json) is the installed cdk-nag's, rule for rule.

The table decides which packs one acknowledgement covers (mlcdk.constructs.nag.acknowledge), so it is read
against cdk-nag's own pack sources, shipped in its jsii tarball: lib/packs/<pack>.js calls
``this.applyRule({..., rule: <module>.<RuleName>, ...})`` once per rule, and a rule's id is
``<packName>-<RuleName>`` unless the call sets ``ruleSuffixOverride`` (AwsSolutions' "S1", "EC23"...).
"""
from __future__ import annotations

import importlib.util
import re
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from mlcdk.presets import nag_packs

#: Each pack's source file in cdk-nag's lib/packs/.
PACK_FILES = {"AwsSolutions": "aws-solutions", "NIST.800.53.R5": "nist-800-53-r5",
              "HIPAA.Security": "hipaa-security", "PCI.DSS.321": "pci-dss-321"}


def pack_source(name: str) -> str:
    """lib/packs/<name>.js of the installed cdk-nag, read from its jsii tarball (without starting jsii)."""
    (package,) = importlib.util.find_spec("cdk_nag").submodule_search_locations
    (tarball,) = (Path(package) / "_jsii").glob("cdk-nag@*.jsii.tgz")
    with tarfile.open(tarball) as archive:
        return archive.extractfile(f"package/lib/packs/{PACK_FILES[name]}.js").read().decode()


def test_the_table_names_the_installed_cdk_nag_version_and_the_four_packs_in_plugin_order():
    document = nag_packs.datafile.read_document(nag_packs.DATA_FILE)
    assert document["cdk_nag"] == metadata.version("cdk-nag") == "3.0.2"
    assert list(nag_packs.packs()) == ["AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"]
    assert {name: pack.option for name, pack in nag_packs.packs().items()} == {
        "AwsSolutions": None, "NIST.800.53.R5": None, "HIPAA.Security": "hipaa", "PCI.DSS.321": "pci_dss"}


@pytest.mark.parametrize("name", ["NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"])
def test_each_compliance_pack_lists_exactly_the_rules_cdk_nag_runs_in_it(name):
    source = pack_source(name)
    assert f"this.packName = '{name}';" in source
    assert "ruleSuffixOverride" not in source  # every rule id is "<pack>-<rule function name>"
    runs = set(re.findall(r"^\s+rule: \w+\.(\w+),$", source, flags=re.M))
    assert nag_packs.packs()[name].rules == runs
    assert len(runs) == {"NIST.800.53.R5": 85, "HIPAA.Security": 90, "PCI.DSS.321": 69}[name]


def test_aws_solutions_names_its_own_rules_and_shares_none():
    source = pack_source("AwsSolutions")
    assert "this.packName = 'AwsSolutions';" in source
    assert source.count("ruleSuffixOverride:") == source.count("rule: ") == 131
    assert nag_packs.packs()["AwsSolutions"].rules == frozenset()


def test_each_plugin_class_is_the_pack_of_that_name():
    import cdk_nag

    for name, pack in nag_packs.packs().items():
        assert getattr(cdk_nag, pack.plugin)().name == name


def test_same_rule_names_a_rule_in_every_pack_that_runs_it_and_no_other():
    assert nag_packs.same_rule("NIST.800.53.R5-S3DefaultEncryptionKMS") == (
        "NIST.800.53.R5-S3DefaultEncryptionKMS", "HIPAA.Security-S3DefaultEncryptionKMS",
        "PCI.DSS.321-S3DefaultEncryptionKMS")
    # HIPAA Security runs no ALBWAFEnabled; PCI DSS 3.2.1 runs no EC2IMDSv2Enabled (nor ELBDeletionProtectionEnabled)
    assert nag_packs.same_rule("PCI.DSS.321-ALBWAFEnabled") == ("PCI.DSS.321-ALBWAFEnabled", "NIST.800.53.R5-ALBWAFEnabled")
    assert nag_packs.same_rule("NIST.800.53.R5-EC2IMDSv2Enabled") == (
        "NIST.800.53.R5-EC2IMDSv2Enabled", "HIPAA.Security-EC2IMDSv2Enabled")
    # a rule only HIPAA Security runs
    assert nag_packs.same_rule("HIPAA.Security-EC2InstanceDetailedMonitoringEnabled") == (
        "HIPAA.Security-EC2InstanceDetailedMonitoringEnabled",)
    assert nag_packs.same_rule("AwsSolutions-S1") == ("AwsSolutions-S1",)


@pytest.mark.parametrize(("rule", "message"), [
    ("NIST.800.53.R4-S3BucketLoggingEnabled", "rule 'NIST.800.53.R4-S3BucketLoggingEnabled' is not from one of the "
                                              "packs mlcdk runs (AwsSolutions, NIST.800.53.R5, HIPAA.Security, PCI.DSS.321)"),
    ("HIPAA.Security-ALBWAFEnabled", "the HIPAA Security pack runs no rule 'ALBWAFEnabled'"),
    ("PCI.DSS.321-S3BucketLogingEnabled", "the PCI DSS 3.2.1 pack runs no rule 'S3BucketLogingEnabled'"),
])
def test_same_rule_refuses_a_pack_mlcdk_does_not_run_and_a_rule_the_pack_does_not_run(rule, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        nag_packs.same_rule(rule)


def test_add_checks_without_cdk_nag_says_which_extra_to_install():
    import subprocess
    import sys

    code = ("import sys; sys.modules['cdk_nag'] = None\n"  # as if cdk-nag were not installed
            "import aws_cdk as cdk\nfrom mlcdk.constructs.nag import add_checks\n"
            "try:\n    add_checks(cdk.App(), hipaa=True)\nexcept ImportError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.startswith("mlcdk's nag checks need cdk-nag 3: pip install 'mlcdk[nag]' (")
