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


def bucket_app(ack=None):
    """A bucket that passes both packs except for server access logging, which ``ack`` may acknowledge."""
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


def test_nag_gate_catches_a_finding_hidden_by_a_malformed_acknowledgement_id():
    for rule in LOGGING_RULES:
        others = [r for r in LOGGING_RULES if r != rule]

        def malformed(b, rule=rule, others=others):
            acknowledge(b, tuple(others), "test bucket: access logs would log themselves")
            cdk.Validations.of(b).acknowledge(cdk.Acknowledgment(id=rule, reason="server access logs are not needed"))
        result = synth(bucket_app(malformed))  # synth passes: the finding vanished without a record
        problems = nag_problems(result)
        assert any(rule in p and "without a recorded acknowledgement" in p for p in problems), (rule, problems)


def test_nag_gate_accepts_a_targeted_acknowledgement_with_a_reason():
    proper = lambda b: acknowledge(b, LOGGING_RULES, "test bucket: access logs would log themselves")  # noqa: E731
    assert nag_problems(synth(bucket_app(proper))) == []


def test_nag_gate_rejects_a_vague_reason():
    def vague(b):
        acknowledge(b, "AwsSolutions-S1", "test bucket: access logs would log themselves")
        cdk.Validations.of(b).acknowledge(cdk.Acknowledgment(id="NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
                                                             reason="ok"))
    assert any("not specific" in p for p in nag_problems(synth(bucket_app(vague))))


def test_the_packs_mlcdk_runs_are_the_packs_it_acknowledges_for():
    from mlcdk.constructs.nag import PACKS, checks

    assert tuple(plugin.name for plugin in checks()) == PACKS


def test_acknowledge_builds_each_pack_prefix_and_refuses_other_packs():
    def build(app):
        stack = cdk.Stack(app, "Acks")
        bucket = s3.Bucket(stack, "Bucket")
        acknowledge(bucket, LOGGING_RULES, "test bucket: access logs would log themselves")
        return [stack]
    result = synth(build, nag=False)
    (bucket,) = [c for c in result.app.node.find_all() if c.node.path == "Acks/Bucket"]
    ids = {rule for entry in bucket.node.metadata if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
           for rule in dict(entry.data)}
    assert ids == {"AwsSolutions::AwsSolutions-S1", "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled"}
    with pytest.raises(ValueError, match="HIPAA.Security-S3BucketLoggingEnabled"):
        acknowledge(bucket, "HIPAA.Security-S3BucketLoggingEnabled", "a pack mlcdk does not run at all")


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
