"""Guardrails on a TrainingCluster: cost burn from the catalog price, budget on the cost tag, alarms, dashboard."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from mlcdk import ConfigurationError, PurchaseOptions, TrainingCluster
from mlcdk.constructs.guardrails import BUDGETS_UNSUPPORTED_REGIONS, COST_TAG, GuardrailOptions
from mlcdk.presets import catalog
from tests.harness import cli_context, lint, nag_problems, synth

#: stack name -> (region or None, TrainingCluster keyword arguments)
VARIANTS = {
    "G5East": ("us-east-1", dict(instance_type="g5.12xlarge", max_hourly_cost_usd=50, alarm_emails=["ml@example.com"])),
    "G5Ireland": ("eu-west-1", dict(instance_type="g5.12xlarge", max_hourly_cost_usd=50)),
    "P5East": ("us-east-1", dict(instance_type="p5.48xlarge", nodes=2, max_hourly_cost_usd=200)),
    "P5Stockholm": ("eu-north-1", dict(instance_type="p5.48xlarge", nodes=2, max_hourly_cost_usd=200)),
    "Trn1Spot": ("us-west-2", dict(preset="finetune-nvidia-l40s", max_hourly_cost_usd=20)),
    "Trn1Mixed": ("us-east-1", dict(instance_type="trn1.32xlarge", nodes=4, purchase=PurchaseOptions(
        option="mixed", on_demand_base_capacity=2, on_demand_percentage_above_base=50))),
    "Off": ("us-west-2", dict(instance_type="trn1.32xlarge", nodes=2, guardrails=GuardrailOptions(
        budget=False, dashboard=False, hardware_alarms=False))),
    "Idle": ("us-west-2", dict(preset="llm-pretrain-trainium", guardrails=GuardrailOptions(
        scale_to_zero_when_idle=True, low_utilization_hours=3, high_memory_percent=80))),
    "Agnostic": (None, dict(instance_type="trn1.32xlarge", nodes=2, max_hourly_cost_usd=100)),
}


@pytest.fixture(scope="module")
def result():
    def build(app):
        stacks = []
        for name, (region, kwargs) in VARIANTS.items():
            stack = cdk.Stack(app, name, env=cdk.Environment(region=region) if region else None)
            TrainingCluster(stack, "Cluster", **{"engine": "nodes", **kwargs})
            stacks.append(stack)
        return stacks
    return synth(build, cli_context())


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def alarm(template: dict, word: str) -> dict:
    (found,) = [r["Properties"] for r in of_type(template, "AWS::CloudWatch::Alarm").values()
                if word in r["Properties"]["AlarmDescription"]]
    return found


def expression_of(alarm_properties: dict) -> str:
    (math,) = [m for m in alarm_properties["Metrics"] if "Expression" in m]
    return json.dumps(math["Expression"]) if not isinstance(math["Expression"], str) else math["Expression"]


#: On-demand USD per instance-hour, read by hand from data/prices/aws-ml-instance-prices.csv (the "Price" column),
#: not from the code under test.
ON_DEMAND_USD = {("g5.12xlarge", "us-east-1"): 5.672, ("g5.12xlarge", "eu-west-1"): 6.33167,
                 ("p5.48xlarge", "us-east-1"): 55.04, ("p5.48xlarge", "eu-north-1"): 58.8928,
                 ("trn1.32xlarge", "us-east-1"): 21.5}
#: The lowest "SpotPrice" sample of g6e.12xlarge in us-west-2's AZs (usw2-az4), read by hand from the same file.
G6E_12XLARGE_SPOT_US_WEST_2 = 3.1053


@pytest.mark.parametrize(("stack", "instance_type", "region"), [
    ("G5East", "g5.12xlarge", "us-east-1"), ("G5Ireland", "g5.12xlarge", "eu-west-1"),
    ("P5East", "p5.48xlarge", "us-east-1"), ("P5Stockholm", "p5.48xlarge", "eu-north-1"),
])
def test_cost_burn_multiplies_in_service_instances_by_the_catalog_price_of_the_region(result, stack, instance_type, region):
    price = ON_DEMAND_USD[instance_type, region]
    burn = alarm(result.templates[stack], "hourly cost burn")
    assert expression_of(burn) == f"inservice * {price!r}"
    (inservice,) = [m for m in burn["Metrics"] if m["Id"] == "inservice"]
    assert inservice["MetricStat"]["Metric"]["MetricName"] == "GroupInServiceInstances"
    assert burn["Threshold"] == VARIANTS[stack][1]["max_hourly_cost_usd"]


def test_spot_clusters_price_at_the_spot_sample_and_say_so(result):
    burn = alarm(result.templates["Trn1Spot"], "hourly cost burn")
    assert expression_of(burn) == f"inservice * {G6E_12XLARGE_SPOT_US_WEST_2!r}"
    assert "spot sample" in burn["AlarmDescription"]


def test_env_agnostic_stacks_take_the_price_from_a_parameter_defaulting_to_us_east_1(result):
    template = result.templates["Agnostic"]
    (name,) = [k for k in template["Parameters"] if k.endswith("HourlyPriceUsd")]
    assert template["Parameters"][name]["Default"] == ON_DEMAND_USD["trn1.32xlarge", "us-east-1"]
    assert "us-east-1" in template["Parameters"][name]["Description"]
    assert {"Ref": name} in json.loads(expression_of(alarm(template, "hourly cost burn")))["Fn::Join"][1]
    (budget,) = of_type(template, "AWS::Budgets::Budget").values()
    assert budget["Condition"] == "MlcdkBudgetsAvailable"


def test_budget_filters_on_the_cost_tag_that_every_cluster_resource_carries(result):
    template = result.templates["G5East"]
    (budget,) = [r["Properties"] for r in of_type(template, "AWS::Budgets::Budget").values()]
    (tag_filter,) = budget["Budget"]["CostFilters"]["TagKeyValue"]
    key, value = tag_filter.removeprefix("user:").split("$")
    assert key == COST_TAG
    (asg,) = of_type(template, "AWS::AutoScaling::AutoScalingGroup").values()
    assert {"Key": key, "Value": value, "PropagateAtLaunch": True} in asg["Properties"]["Tags"]
    (launch_template,) = of_type(template, "AWS::EC2::LaunchTemplate").values()
    specs = launch_template["Properties"]["LaunchTemplateData"]["TagSpecifications"]
    assert {s["ResourceType"] for s in specs} >= {"instance", "volume"}
    assert all({"Key": key, "Value": value} in s["Tags"] for s in specs)
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::EC2::NatGateway", "AWS::SNS::Topic"):
        for resource in of_type(template, kind).values():
            assert {"Key": key, "Value": value} in resource["Properties"]["Tags"], kind


def test_budget_notifies_topic_and_emails_at_80_and_100_percent_actual_and_100_forecast(result):
    template = Template.from_json(result.templates["G5East"])
    template.has_resource_properties("AWS::Budgets::Budget", {
        "Budget": Match.object_like({"BudgetLimit": {"Amount": 4140.56, "Unit": "USD"},  # 5.672 USD/h x 730 h
                                     "TimeUnit": "MONTHLY", "BudgetType": "COST"}),
        "NotificationsWithSubscribers": [
            {"Notification": Match.object_like({"NotificationType": kind, "Threshold": percent}),
             "Subscribers": [Match.object_like({"SubscriptionType": "SNS"}),
                             {"SubscriptionType": "EMAIL", "Address": "ml@example.com"}]}
            for kind, percent in (("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100))],
    })
    template.has_resource_properties("AWS::SNS::TopicPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Principal": {"Service": "budgets.amazonaws.com"}, "Action": "sns:Publish"})])}})


def test_every_alarm_notifies_the_cluster_topic(result):
    for name, template in result.templates.items():
        (topic,) = of_type(template, "AWS::SNS::Topic")
        alarms = of_type(template, "AWS::CloudWatch::Alarm").values()
        assert alarms
        for a in alarms:
            assert {"Ref": topic} in a["Properties"]["AlarmActions"], (name, a["Properties"]["AlarmDescription"])


def test_default_alarm_set_and_dashboard(result):
    descriptions = [a["Properties"]["AlarmDescription"] for a in of_type(result.templates["G5East"], "AWS::CloudWatch::Alarm").values()]
    for expected in ("accelerator utilization below 10% for 2 h", "accelerator memory above 90%", "CPU below 2%",
                     "fails EC2 status checks", "hourly cost burn above $50/h", "ACCOUNT's estimated charges"):
        assert any(expected in d for d in descriptions), expected
    assert len(of_type(result.templates["G5East"], "AWS::CloudWatch::Dashboard")) == 1
    neuron = [a["Properties"]["AlarmDescription"] for a in of_type(result.templates["Idle"], "AWS::CloudWatch::Alarm").values()]
    assert any("uncorrectable accelerator ECC errors" in d for d in neuron)


def test_idle_alarm_counts_only_while_instances_are_in_service(result):
    idle = alarm(result.templates["G5East"], "accelerator utilization below")
    assert expression_of(idle) == "IF(inservice > 0, FILL(busy, 0), 100)"
    (busy,) = [m for m in idle["Metrics"] if m["Id"] == "busy"]
    assert busy["MetricStat"]["Metric"]["MetricName"] == "nvidia_smi_utilization_gpu"
    assert (idle["Threshold"], idle["EvaluationPeriods"], idle["ComparisonOperator"]) == (10, 24, "LessThanThreshold")


def test_thresholds_come_from_options_then_preset_then_defaults(result):
    idle = alarm(result.templates["Idle"], "utilization below")
    assert idle["EvaluationPeriods"] == 36  # 3 h of 5-minute periods
    assert alarm(result.templates["Idle"], "accelerator memory above")["Threshold"] == 80
    assert alarm(result.templates["Trn1Spot"], "accelerator memory above")["Threshold"] == 95  # the preset's


def test_cpu_idle_alarm_fires_below_two_percent_cpu_only_while_instances_run(result):
    from mlcdk.constructs.guardrails import CPU_IDLE_PERCENT

    cpu = alarm(result.templates["G5East"], "CPU below")
    assert CPU_IDLE_PERCENT == 2
    assert (cpu["Threshold"], cpu["ComparisonOperator"], cpu["EvaluationPeriods"]) == (2, "LessThanThreshold", 24)
    assert cpu["AlarmDescription"].startswith("Cluster: CPU below 2% for 2 h while instances run")
    assert expression_of(cpu) == "IF(inservice > 0, FILL(cpu, 0), 100)"
    metrics_by_id = {m["Id"]: m["MetricStat"]["Metric"] for m in cpu["Metrics"] if "MetricStat" in m}
    assert (metrics_by_id["cpu"]["Namespace"], metrics_by_id["cpu"]["MetricName"]) == ("AWS/EC2", "CPUUtilization")
    assert metrics_by_id["inservice"]["MetricName"] == "GroupInServiceInstances"
    assert cpu["TreatMissingData"] == "notBreaching"


def test_spot_fallback_alarm_counts_on_demand_nodes_above_the_base_and_share(result):
    """4 nodes, base 2, 50% above it: 2 + CEIL(0.5 x 2) = 3 may run on demand. The gauge reports each on-demand
    node once a minute, so the 5-minute Sum / 5 is the on-demand count: 3 nodes give 0 (no alarm), 4 give 1."""
    template = result.templates["Trn1Mixed"]
    mixed = alarm(template, "more nodes on demand than the base of 2 plus 50%")
    assert expression_of(mixed) == "(od / 5) - (2 + CEIL(0.5 * MAX([inservice - 2, 0])))"
    assert (mixed["Threshold"], mixed["ComparisonOperator"], mixed["EvaluationPeriods"]) == (0, "GreaterThanThreshold", 3)
    (od,) = [m["MetricStat"] for m in mixed["Metrics"] if m["Id"] == "od"]
    assert (od["Metric"]["Namespace"], od["Metric"]["MetricName"], od["Stat"], od["Period"]) == (
        "CWAgent", "mlcdk_on_demand_nodes", "Sum", 300)
    (asg_id,) = of_type(template, "AWS::AutoScaling::AutoScalingGroup")
    assert od["Metric"]["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": {"Ref": asg_id}}]


def test_scale_to_zero_when_idle_adds_an_exact_capacity_zero_action(result):
    template = result.templates["Idle"]
    (policy_id, policy), = of_type(template, "AWS::AutoScaling::ScalingPolicy").items()
    assert policy["Properties"]["AdjustmentType"] == "ExactCapacity"
    assert [s["ScalingAdjustment"] for s in policy["Properties"]["StepAdjustments"]] == [0]
    assert {"Ref": policy_id} in alarm(template, "utilization below")["AlarmActions"]


def test_spot_fallback_alarm_only_for_mixed_groups(result):
    mixed = alarm(result.templates["Trn1Mixed"], "more nodes on demand than the base of 2 plus 50%")
    assert "CEIL(0.5 * MAX([inservice - 2, 0]))" in expression_of(mixed)
    (od,) = [m for m in mixed["Metrics"] if m["Id"] == "od"]
    assert od["MetricStat"]["Metric"]["MetricName"] == "mlcdk_on_demand_nodes"
    for name in ("G5East", "Trn1Spot", "Off"):
        assert not [a for a in of_type(result.templates[name], "AWS::CloudWatch::Alarm").values()
                    if "on demand than the base" in a["Properties"]["AlarmDescription"]]


def test_switching_features_off_removes_them(result):
    template = result.templates["Off"]
    assert of_type(template, "AWS::Budgets::Budget") == {}
    assert of_type(template, "AWS::CloudWatch::Dashboard") == {}
    descriptions = " ".join(a["Properties"]["AlarmDescription"] for a in of_type(template, "AWS::CloudWatch::Alarm").values())
    assert "status checks" not in descriptions and "ECC" not in descriptions and "utilization below" in descriptions


def test_billing_alarm_only_in_us_east_1_and_budget_skipped_where_cloudformation_lacks_it(result):
    def has_billing(name):
        return any(a["Properties"].get("MetricName") == "EstimatedCharges"
                   for a in of_type(result.templates[name], "AWS::CloudWatch::Alarm").values())
    assert has_billing("G5East") and not has_billing("G5Ireland") and not has_billing("Agnostic")
    assert "eu-north-1" in BUDGETS_UNSUPPORTED_REGIONS
    assert of_type(result.templates["P5Stockholm"], "AWS::Budgets::Budget") == {}
    assert len(of_type(result.templates["G5Ireland"], "AWS::Budgets::Budget")) == 1


def test_stack_output_gives_the_monthly_cost_at_full_size_with_the_price_date(result):
    (output,) = [o for k, o in result.templates["P5East"]["Outputs"].items() if "EstimatedMonthlyCostUsd" in k]
    assert output["Value"] == "80358.40"  # 2 nodes x 55.04 USD/h x 730 h
    assert f"prices as of {catalog.default_catalog().provenance.prices_as_of}" in output["Description"]


def test_guardrail_variants_pass_cdk_nag_and_cfn_lint(result):
    assert nag_problems(result) == []
    for name, (region, kwargs) in VARIANTS.items():
        regions = [region] if region else list(catalog.get(kwargs["instance_type"]).regions)
        assert lint(result.template_paths[name], regions) == [], name


def test_budget_region_list_matches_cfn_lint():
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    template = {"Resources": {"B": {"Type": "AWS::Budgets::Budget", "Properties": {"Budget": {
        "BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 1, "Unit": "USD"}}}}}}
    # one cfn-lint run over every region (0.5 s; one run per region took 12 s): E3006 names each region that lacks it
    matches = cfn_lint(json.dumps(template), config=ManualArgs(regions=list(catalog.regions())))
    named = {m.message.rsplit("'", 2)[-2] for m in matches if m.rule.id == "E3006"}
    lacking = [r for r in catalog.regions() if r in named]
    assert tuple(lacking) == BUDGETS_UNSUPPORTED_REGIONS


@pytest.mark.parametrize(("options", "message"), [
    (GuardrailOptions(low_utilization_percent=0), r"guardrails.low_utilization_percent \(0\) must be a number above 0 and at most 100"),
    (GuardrailOptions(low_utilization_hours=48), r"guardrails.low_utilization_hours \(48\) must be a number from 0.25 to 24"),
    (GuardrailOptions(max_hourly_cost_usd=-5), r"guardrails.max_hourly_cost_usd \(-5\) must be a number above 0 and at most 1000000"),
    (GuardrailOptions(monthly_budget_usd=0), r"guardrails.monthly_budget_usd \(0\) must be a number above 0 and at most 730000000"),
])
def test_bad_guardrail_options_fail_at_construction(options, message):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(ConfigurationError, match=message):
        TrainingCluster(stack, "Cluster", instance_type="g5.xlarge", engine="nodes", guardrails=options)
