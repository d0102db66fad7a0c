"""Every public parameter of the constructs and option groups is checked by one mechanism (mlcdk.params).

Hypothesis feeds values of the wrong kind to each parameter and field: the call must either build or raise
mlcdk.ConfigurationError naming the parameter, never a TypeError or a jsii error, and the jsii kernel must
still answer afterwards (a NaN used to kill it). The tables name the rules the README promises.
"""
from __future__ import annotations

import dataclasses
import inspect
import math

import aws_cdk as cdk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcdk import (
    CapacityOptions, ConfigurationError, GuardrailOptions, InferenceFleet, JobOptions, PrivateNetwork, PurchaseOptions,
    ScaleSchedule, StorageOptions, TrainingCluster,
)
from mlcdk.params import check_value
from tests.harness import cli_context

WRONG = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", " ", "false", "true", "4", "nan", "s3://x"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
    st.none(),
    st.dictionaries(st.sampled_from(["option", "image", "stop"]), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=3),
)
SKIP = {"self", "scope", "construct_id", "instance_type", "preset"}


def parameters(cls) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p not in SKIP]


def kernel_alive() -> bool:
    return cdk.Stack(cdk.App(), "Alive").node.id == "Alive"


def attempt(make) -> None:
    try:
        make()
    except ConfigurationError:
        pass
    assert kernel_alive()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(parameters(TrainingCluster)), value=WRONG)
def test_training_cluster_takes_any_value_without_crashing(name, value):
    def make():
        stack = cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1"))
        TrainingCluster(stack, "C", instance_type="g5.xlarge", **{name: value})

    attempt(make)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(parameters(InferenceFleet)), value=WRONG)
def test_inference_fleet_takes_any_value_without_crashing(name, value):
    def make():
        stack = cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "F", instance_type="g5.xlarge", **{name: value})

    attempt(make)


OPTION_GROUPS = [(PurchaseOptions, "purchase"), (StorageOptions, "storage"), (JobOptions, "job"),
                 (CapacityOptions, "capacity"), (GuardrailOptions, "guardrails")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group=st.sampled_from(OPTION_GROUPS), data=st.data())
def test_option_group_fields_take_any_value_without_crashing(group, data):
    cls, parameter = group
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls) if f.name not in required]))
    value = data.draw(WRONG)

    def make():
        stack = cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1"))
        TrainingCluster(stack, "C", instance_type="g5.xlarge", **{parameter: cls(**{field: value})})

    attempt(make)


# The rules, one row each: (call, message). The message names the parameter, the value and what is allowed.
def cluster(**kwargs):
    stack = cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1"))
    return TrainingCluster(stack, "C", **{"instance_type": "g5.xlarge", **kwargs})


RULES = [
    (lambda: cluster(efa="false"), "efa ('false') must be True or False"),
    (lambda: cluster(placement_group="no"), "placement_group ('no') must be True or False"),
    (lambda: cluster(nodes="4"), "nodes ('4') must be a whole number"),
    (lambda: cluster(nodes=4.0), "nodes (4.0) must be a whole number"),
    (lambda: cluster(nodes=True), "nodes (True) must be a whole number"),
    (lambda: cluster(max_hourly_cost_usd=math.inf), "max_hourly_cost_usd (inf) must be a finite number"),
    (lambda: cluster(max_hourly_cost_usd=math.nan), "max_hourly_cost_usd (nan) must be a finite number"),
    (lambda: cluster(alarm_emails=None), "alarm_emails (None) must be a list or tuple of a string"),
    (lambda: cluster(alarm_emails="ops@example.com"),
     "alarm_emails ('ops@example.com') must be a list or tuple of a string, not one string"),
    (lambda: cluster(user_data_commands="echo hi"), "user_data_commands ('echo hi') must be a list or tuple"),
    (lambda: cluster(instance_type=""), "instance_type ('') must be a non-blank string"),
    (lambda: cluster(instance_type=" g5.xlarge"), "instance_type (' g5.xlarge') must be a string without leading"),
    (lambda: cluster(removal_policy="destroy"), "removal_policy ('destroy') must be an aws-cdk RemovalPolicy"),
    (lambda: cluster(checkpoint_grace_period=600), "checkpoint_grace_period (600) must be an aws-cdk Duration"),
    (lambda: cluster(vpc="vpc-123"), "vpc ('vpc-123') must be an aws-cdk ec2.IVpc"),
    (lambda: cluster(purchase={"option": "spot"}),
     "purchase ({'option': 'spot'}) must be a PurchaseOptions(...) or None"),
    (lambda: cluster(purchase=PurchaseOptions(fallback_instance_types="g5.2xlarge")),
     "purchase.fallback_instance_types ('g5.2xlarge') must be a list or tuple of a string, not one string"),
    (lambda: cluster(purchase=PurchaseOptions(on_demand_base_capacity="2")),
     "purchase.on_demand_base_capacity ('2') must be a whole number"),
    (lambda: cluster(storage=StorageOptions(root_volume_size_gib=200.5)),
     "storage.root_volume_size_gib (200.5) must be a whole number"),
    (lambda: cluster(job=JobOptions(timeout_hours="72")), "job.timeout_hours ('72') must be a number"),
    (lambda: cluster(guardrails=GuardrailOptions(low_utilization_percent=math.nan)),
     "guardrails.low_utilization_percent (nan) must be a finite number"),
    (lambda: cluster(guardrails=GuardrailOptions(dashboard="yes")), "guardrails.dashboard ('yes') must be True or False"),
    (lambda: cluster(schedule=ScaleSchedule(stop=20, start="0 7 * * *")),
     "schedule.stop (20) must be a string"),
    (lambda: cluster(capacity=CapacityOptions(capacity_block=1)), "capacity.capacity_block (1) must be True or False"),
    (lambda: cluster(colour="red"), "TrainingCluster: got an unexpected keyword argument 'colour'"),
    (lambda: PrivateNetwork(cdk.Stack(cdk.App(), "N"), "Net", availability_zone_ids="use1-az1"),
     "availability_zone_ids ('use1-az1') must be a list or tuple of a string, not one string"),
]


@pytest.mark.parametrize(("call", "message"), RULES, ids=[m[:48] for _, m in RULES])
def test_each_rule_is_a_configuration_error_naming_the_value(call, message):
    with pytest.raises(ConfigurationError) as error:
        call()
    assert message in str(error.value)
    assert kernel_alive()


@pytest.mark.parametrize(("value", "hint", "fits"), [
    (True, bool, True), ("true", bool, False), (1, bool, False),
    (3, int, True), (True, int, False), (3.0, int, False),
    (2, float, True), (2.5, float, True), (math.nan, float, False), (False, float, False),
    ("a", str, True), ("", str, False), ("a ", str, False),
    (("a",), tuple[str, ...], True), (["a"], tuple[str, ...], True), ("a", tuple[str, ...], False),
    (None, int | None, True), ("x", int | None, False),
])
def test_check_value_table(value, hint, fits):
    if fits:
        check_value("p", value, hint)
    else:
        with pytest.raises(ConfigurationError, match=r"^p \("):
            check_value("p", value, hint)


def test_tokens_pass_unchecked_where_aws_cdk_takes_them():
    stack = cdk.Stack(cdk.App(), "T")
    check_value("p", cdk.CfnParameter(stack, "S").value_as_string, str)
    check_value("p", cdk.CfnParameter(stack, "N", type="Number").value_as_number, int)
