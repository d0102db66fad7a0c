"""The gates themselves: each must fail on what it exists to catch."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from mlcdk.constructs.nag import acknowledge
from tests.harness import lint, nag_problems, synth


LOGGING_RULES = ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled")
#: The bucket's logging finding in each of the four packs the gate runs, as cdk-nag names it.
LOGGING_IDS = ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled", "HIPAA.Security-S3BucketLoggingEnabled",
               "PCI.DSS.321-S3BucketLoggingEnabled")


def bucket_app(ack=None):
    """A bucket that passes the four packs except for server access logging, which ``ack`` may acknowledge."""
    def build(app):
        stack = cdk.Stack(app, "Gate")
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        bucket = s3.Bucket(stack, "Bucket", enforce_ssl=True, versioned=True, encryption_key=key,
                           block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
        acknowledge(bucket, "NIST.800.53.R5-S3BucketReplicationEnabled", "test bucket: a single-region fixture")
        if ack:
            ack(bucket)
        return [stack]
    return build


def raw_acknowledge(construct, rules, reason="test bucket: access logs would log themselves"):
    """cdk's own acknowledgement of exactly ``rules`` (no pack expansion), each with its "<pack>::" prefix."""
    cdk.Validations.of(construct).acknowledge(
        *[cdk.Acknowledgment(id=f"{rule.rpartition('-')[0]}::{rule}", reason=reason) for rule in rules])


def test_nag_gate_reports_an_unacknowledged_finding():
    try:
        result = synth(bucket_app())
    except RuntimeError as error:  # synth itself refuses: the plugin is attached
        assert "ValidationFailed" in str(error)
        return
    raise AssertionError(f"synth should fail, report: {result.report}")


def test_nag_gate_runs_the_nist_pack_too():
    """Acknowledging the AwsSolutions finding alone leaves NIST 800-53 rev 5's finding on the same bucket."""
    only_aws = lambda b: acknowledge(b, "AwsSolutions-S1", "test bucket: access logs would log themselves")  # noqa: E731
    try:
        synth(bucket_app(only_aws))
    except RuntimeError as error:
        assert "NIST.800.53.R5-S3BucketLoggingEnabled" in str(error) and "AwsSolutions-S1" not in str(error)
        return
    raise AssertionError("synth should fail on the NIST finding")


def test_nag_gate_runs_the_opt_in_hipaa_and_pci_packs_too():
    """The gate adds HIPAA Security and PCI DSS 3.2.1: acknowledging the finding in the two default packs only
    (cdk's own acknowledgement, which covers no other pack) leaves it reported by both opt-in packs."""
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        synth(bucket_app(lambda b: raw_acknowledge(b, LOGGING_IDS[:2])))
    report = str(failed.value)
    assert report.count("ERROR ") == 2
    assert "HIPAA.Security::HIPAA.Security-S3BucketLoggingEnabled" in report
    assert "PCI.DSS.321::PCI.DSS.321-S3BucketLoggingEnabled" in report
    assert nag_problems(synth(bucket_app(lambda b: raw_acknowledge(b, LOGGING_IDS)))) == []


def test_nag_gate_catches_a_finding_hidden_by_a_malformed_acknowledgement_id():
    """In each of the four packs: an id without its pack prefix hides the finding and records nothing."""
    for rule in LOGGING_IDS:
        def malformed(b, rule=rule):
            raw_acknowledge(b, [r for r in LOGGING_IDS if r != rule])
            cdk.Validations.of(b).acknowledge(cdk.Acknowledgment(id=rule, reason="server access logs are not needed"))
        result = synth(bucket_app(malformed))  # synth passes: the finding vanished without a record
        problems = nag_problems(result)
        assert any(rule in p and "without a recorded acknowledgement" in p for p in problems), (rule, problems)


def test_nag_gate_accepts_a_targeted_acknowledgement_with_a_reason():
    proper = lambda b: acknowledge(b, LOGGING_RULES, "test bucket: access logs would log themselves")  # noqa: E731
    assert nag_problems(synth(bucket_app(proper))) == []


def test_nag_gate_rejects_a_vague_reason():
    for rule in LOGGING_IDS[1:]:
        def vague(b, rule=rule):
            raw_acknowledge(b, [r for r in LOGGING_IDS if r != rule])
            raw_acknowledge(b, [rule], reason="ok")
        problems = nag_problems(synth(bucket_app(vague)))
        assert any("not specific" in p and rule in p for p in problems), (rule, problems)


def test_the_packs_mlcdk_runs_are_the_packs_it_acknowledges_for():
    from mlcdk.constructs.nag import ALL_PACKS, OPT_IN_PACKS, PACKS, checks

    assert PACKS == ("AwsSolutions", "NIST.800.53.R5") and OPT_IN_PACKS == ("HIPAA.Security", "PCI.DSS.321")
    assert tuple(plugin.name for plugin in checks()) == PACKS
    assert tuple(plugin.name for plugin in checks(hipaa=True)) == (*PACKS, "HIPAA.Security")
    assert tuple(plugin.name for plugin in checks(pci_dss=True)) == (*PACKS, "PCI.DSS.321")
    assert tuple(plugin.name for plugin in checks(hipaa=True, pci_dss=True)) == ALL_PACKS


def acknowledged_ids(result, path: str) -> set[str]:
    (construct,) = [c for c in result.app.node.find_all() if c.node.path == path]
    return {rule for entry in construct.node.metadata if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
            for rule in dict(entry.data)}


def test_acknowledge_builds_each_pack_prefix_covers_the_shared_rule_in_every_pack_and_refuses_other_packs():
    def build(app):
        stack = cdk.Stack(app, "Acks")
        bucket = s3.Bucket(stack, "Bucket")
        acknowledge(bucket, LOGGING_RULES, "test bucket: access logs would log themselves")
        balancer = s3.Bucket(stack, "Waf")  # any construct: the ids are what is checked
        acknowledge(balancer, "PCI.DSS.321-ALBWAFEnabled", "a rule that HIPAA Security does not run")
        return [stack]
    result = synth(build, nag=False)
    assert acknowledged_ids(result, "Acks/Bucket") == {
        "AwsSolutions::AwsSolutions-S1", "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
        "HIPAA.Security::HIPAA.Security-S3BucketLoggingEnabled", "PCI.DSS.321::PCI.DSS.321-S3BucketLoggingEnabled"}
    # cdk-nag 3.0.2's HIPAA pack has no ALBWAFEnabled (lib/packs/hipaa-security.js): no id for a rule not run
    assert acknowledged_ids(result, "Acks/Waf") == {"PCI.DSS.321::PCI.DSS.321-ALBWAFEnabled",
                                                    "NIST.800.53.R5::NIST.800.53.R5-ALBWAFEnabled"}
    stack = result.stacks["Acks"]
    with pytest.raises(ValueError, match="NIST.800.53.R4-S3BucketLoggingEnabled"):
        acknowledge(stack, "NIST.800.53.R4-S3BucketLoggingEnabled", "a pack mlcdk does not run at all")
    with pytest.raises(ValueError, match="the HIPAA Security pack runs no rule 'ALBWAFEnabled'"):
        acknowledge(stack, "HIPAA.Security-ALBWAFEnabled", "a rule that pack does not run")
    with pytest.raises(ValueError, match="runs no rule 'S3BucketLogingEnabled'"):
        acknowledge(stack, "NIST.800.53.R5-S3BucketLogingEnabled", "a misspelled rule would hide nothing")


def test_lint_gate_rejects_an_instance_type_a_region_does_not_have():
    def build(app):
        stack = cdk.Stack(app, "Lint")
        ec2.CfnInstance(stack, "Node", instance_type="trn1.32xlarge", image_id="ami-12345678")
        return [stack]
    result = synth(build, nag=False)
    path = result.template_paths["Lint"]
    assert any(p.startswith("E3628") for p in lint(path, ["eu-west-1"]))
    assert lint(path, ["us-east-1"]) == []


def test_lint_gate_accepts_e3628_only_where_the_ec2_api_shows_the_type_offered():
    def build(app):
        stack = cdk.Stack(app, "Lag")
        ec2.CfnInstance(stack, "Node", instance_type="trn1.32xlarge", image_id="ami-12345678")
        return [stack]
    path = synth(build, nag=False).template_paths["Lag"]
    assert lint(path, ["ap-south-1"]) == []  # cfn-lint's data lags; DescribeInstanceTypeOfferings lists it
    assert lint(path, ["eu-west-1"]) != []   # not offered there by any source


def test_tests_write_temporary_files_only_under_a_scratch_directory_removed_at_exit(tmp_path):
    """Synth output goes under pytest's tmp; aws-cdk's own temp dirs (its Node process reads TMPDIR) go to the
    scratch directory that tests/conftest.py makes and removes at exit (with pytest-xdist, the workers' dirs
    sit inside the main process's): a run leaves nothing loose in /tmp."""
    import os
    import tempfile

    from tests import harness

    scratch = os.environ["TMPDIR"]
    assert "/mlcdk-tests-" in scratch and tempfile.gettempdir() == scratch
    assert harness.OUTPUT_ROOT is not None
    for path in (harness.OUTPUT_ROOT, tmp_path):
        assert "/mlcdk-tests-" in str(path), path


def test_acknowledgement_check_reads_every_construct_of_the_stack_file_and_the_app_outside_it():
    """acknowledgement_problems reads a stack's constructs from its <stack>.metadata.json and the app through
    jsii: an acknowledgement at the app root, at the stack root, a vague reason deep in the tree and a malformed
    id are each found, at the path of the construct that carries it."""
    from tests.harness import acknowledgement_problems

    def build(app):
        stack = cdk.Stack(app, "Roots")
        bucket = s3.Bucket(stack, "Bucket")
        raw_acknowledge(bucket.node.default_child, ["AwsSolutions-S1"], reason="vague")
        cdk.Validations.of(bucket).acknowledge(cdk.Acknowledgment(id="AwsSolutions-S10", reason="a" * 30))
        raw_acknowledge(stack, ["AwsSolutions-S2"])
        raw_acknowledge(app, ["AwsSolutions-S3"])
        return [stack]
    problems = acknowledgement_problems(synth(build, nag=False))
    assert sorted(problems) == sorted([
        ": 'AwsSolutions::AwsSolutions-S3' acknowledged at the stack root, not on the construct",
        "Roots: 'AwsSolutions::AwsSolutions-S2' acknowledged at the stack root, not on the construct",
        "Roots/Bucket/Resource: acknowledgement 'AwsSolutions::AwsSolutions-S1' reason 'vague' is not specific",
        "Roots/Bucket: 'Annotation::AwsSolutions-S10' hides a finding without a recorded acknowledgement; use the "
        "'<pack>::<rule>' id",
    ])
