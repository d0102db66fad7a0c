"""Promises of issue #25 that a one-line change could break without a test noticing; each test names that change.

The refusals themselves are rows of tests/test_bad_input.py (capacity-open-group-target, server-command-whitespace,
email-double-dot, bound-health-check-path-2001); here are the acceptances that must not turn into refusals, and
the promises checked below the constructs, where a rework of a construct cannot drop them.
"""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from mlcdk import CapacityOptions, ConfigurationError, InferenceFleet, ModelOptions, PurchaseOptions, TrainingCluster
from mlcdk.params import check_value
from tests.harness import cli_context

CR = "cr-0123456789abcdef0"
GROUP = "arn:aws:resource-groups:us-east-1:123456789012:group/ml-reservations"


def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1"))


def test_a_reservation_with_no_fallback_types_is_accepted_on_a_cluster():
    """Catches `bool(purchase.fallback_instance_types)` turning back into `... is not None` in
    mlcdk.constructs.held_capacity.validate: `PurchaseOptions(fallback_instance_types=())` asks for no fallbacks, which
    is what a reservation needs, and was refused with "drop the fallbacks"."""
    scope = stack()
    cluster = TrainingCluster(scope, "C", preset="llm-pretrain-trainium", engine="nodes",
                              purchase=PurchaseOptions(fallback_instance_types=()),
                              capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az5"))
    assert cluster.instance_types == ("trn1.32xlarge",)  # the preset's trn1n.32xlarge fallback is not used
    template = Template.from_stack(scope).to_json()
    data = next(r["Properties"]["LaunchTemplateData"] for r in template["Resources"].values()
                if r["Type"] == "AWS::EC2::LaunchTemplate")
    assert data["CapacityReservationSpecification"] == {
        "CapacityReservationPreference": "capacity-reservations-only",
        "CapacityReservationTarget": {"CapacityReservationId": CR}}


def test_a_reservation_with_no_fallback_types_is_accepted_on_a_fleet():
    """The same rule on InferenceFleet, the README's recipe for a preset with fallbacks (serving-nvidia) on one
    type: `purchase=PurchaseOptions(option="on-demand", fallback_instance_types=())`."""
    fleet = InferenceFleet(stack(), "F", preset="serving-nvidia", max_capacity=2,
                           model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
                           purchase=PurchaseOptions(option="on-demand", fallback_instance_types=()),
                           capacity=CapacityOptions(reservation_id=CR, availability_zone_id="use1-az4"))
    assert fleet.instance_types == ("g6.xlarge",)


def test_explicit_fallback_types_with_a_reservation_are_still_refused():
    with pytest.raises(ConfigurationError, match=r"purchase.fallback_instance_types with a capacity reservation: a "
                                                 r"reservation holds trn1.32xlarge only; drop the fallbacks"):
        TrainingCluster(stack(), "C", instance_type="trn1.32xlarge", nodes=2,
                        purchase=PurchaseOptions(fallback_instance_types=("trn1n.32xlarge",)),
                        capacity=CapacityOptions(reservation_id=CR))


def test_open_preference_is_refused_with_either_kind_of_target():
    """Catches `c.targeted` narrowing to `c.reservation_id is not None` in the 'open' row: EC2 takes a target
    (an ID or a group ARN) only with 'capacity-reservations-only'."""
    for capacity in (CapacityOptions(reservation_id=CR, preference="open"),
                     CapacityOptions(reservation_group_arn=GROUP, preference="open")):
        with pytest.raises(ConfigurationError, match=r"capacity.preference \('open'\) cannot go with a reservation "
                                                     r"target"):
            TrainingCluster(stack(), "C", instance_type="p4d.24xlarge", nodes=2, capacity=capacity)


@pytest.mark.parametrize("command", ["", " ", "\n", " \t\n "])
def test_a_blank_server_command_is_refused_by_the_parameter_mechanism(command):
    """Catches the free-text exemption (FREE_TEXT) being applied before the blank check in mlcdk.params: the rule
    lives in the one parameter mechanism, so it holds for whatever construct or option group takes the command."""
    with pytest.raises(ConfigurationError, match=r"model_server_command \(.*\) must be a non-blank string"):
        check_value("model_server_command", command, str)
    with pytest.raises(ConfigurationError, match=r"model.command \(.*\) must be a non-blank string"):
        check_value("model.command", command, str | None)
