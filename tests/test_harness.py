"""The gates themselves: each must fail on what it exists to catch."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from mlcdk.constructs.nag import acknowledge
from tests.harness import lint, nag_problems, synth


def bucket_app(ack=None):
    def build(app):
        stack = cdk.Stack(app, "Gate")
        bucket = s3.Bucket(stack, "Bucket", enforce_ssl=True)
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


def test_nag_gate_catches_a_finding_hidden_by_a_malformed_acknowledgement_id():
    malformed = lambda b: cdk.Validations.of(b).acknowledge(  # noqa: E731
        cdk.Acknowledgment(id="AwsSolutions-S1", reason="server access logs are not needed here"))
    result = synth(bucket_app(malformed))  # synth passes: the finding vanished without a record
    assert any("without a recorded acknowledgement" in p for p in nag_problems(result))


def test_nag_gate_accepts_a_targeted_acknowledgement_with_a_reason():
    proper = lambda b: acknowledge(b, "AwsSolutions-S1", "test bucket: access logs would log themselves")  # noqa: E731
    assert nag_problems(synth(bucket_app(proper))) == []


def test_nag_gate_rejects_a_vague_reason():
    vague = lambda b: cdk.Validations.of(b).acknowledge(  # noqa: E731
        cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-S1", reason="ok"))
    assert any("not specific" in p for p in nag_problems(synth(bucket_app(vague))))


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
