"""Guardrails: utilization, hardware, cost and spot-fallback alarms, a budget and a dashboard for a node group.

One module for TrainingCluster and InferenceFleet. Every alarm notifies the group's SNS topic. Every
piece can be switched off through GuardrailOptions, and the defaults are documented there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlcdk.constructs.guardrail_options import (  # noqa: F401 (GuardrailOptions is public here too)
    REFERENCE_REGION, GuardrailOptions, Thresholds, hourly_price,
)
from mlcdk.constructs.options import CapacityOptions, PurchaseOptions
from mlcdk.constructs.validation import concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.presets import catalog, datafile, metrics
from mlcdk.presets.catalog import HOURS_PER_MONTH, InstanceSpec

COST_TAG = "mlcdk:cost-group"
#: The CpuIdle alarm's threshold: CPU utilization (%) below which in-service nodes count as idle, a fallback
#: signal for when accelerator metrics stop.
CPU_IDLE_PERCENT = 2
_SERVICE_REGIONS_FILE = catalog.DATA_DIR / "service_regions.json"
with datafile.reading(_SERVICE_REGIONS_FILE):
    BUDGETS_UNSUPPORTED_REGIONS = tuple(datafile.read_document(_SERVICE_REGIONS_FILE)["budgets_unsupported"]["regions"])


@dataclass(frozen=True)
class GuardrailsProps:
    """What the guardrails watch and whom they tell. ``source``: the cluster or fleet, which provides
    ``metric_accelerator_utilization()``, ``metric_accelerator_memory_utilization()``, ``metric_cpu_utilization()``
    and ``metric_in_service_instances()``. ``extra_alarms(guardrails)`` may add alarms with
    :meth:`Guardrails.add_alarm` before the dashboard is built. ``extra_monthly_costs``: (label, USD a month) pairs
    of fixed costs beside the nodes (a shared file system), added to EstimatedMonthlyCostUsd, named in its
    description, and added to the default budget."""

    source: object
    spec: InstanceSpec
    auto_scaling_group: autoscaling.AutoScalingGroup | None
    max_nodes: object
    purchase: PurchaseOptions
    topic: sns.ITopic
    emails: tuple[str, ...]
    options: GuardrailOptions
    thresholds: Thresholds
    label: str
    extra_alarms: Callable[[Guardrails], None] | None = None
    capacity: CapacityOptions | None = None
    extra_monthly_costs: Sequence[tuple[str, float]] = ()


class Guardrails(Construct):
    """Alarms, budget and dashboard for one Auto Scaling group of accelerated nodes (see GuardrailsProps)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: GuardrailsProps) -> None:
        super().__init__(scope, construct_id)
        p, spec, options = props, props.spec, props.options
        stack = cdk.Stack.of(self)
        region = stack.region if concrete(stack.region) else None
        self.low_utilization_percent = p.thresholds.low_utilization_percent
        self.low_utilization_hours = p.thresholds.low_utilization_hours
        self.high_memory_percent = p.thresholds.high_memory_percent
        self.topic, self._action = p.topic, actions.SnsAction(p.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.price = hourly_price(spec, region, p.purchase, p.capacity)
        self._reserved(p)
        in_service = p.source.metric_in_service_instances(period=cdk.Duration.minutes(5))
        self._cost_alarms(spec, options, p.label, region, in_service)
        self._utilization_alarms(p.source, spec, options, p.label, p.auto_scaling_group, in_service)
        if options.hardware_alarms:
            self._hardware_alarms(p.source, spec, p.label, p.auto_scaling_group)
        if p.purchase.option == "mixed" and options.spot_fallback_alarm:
            self._spot_fallback_alarm(p.source, p.purchase, p.label, in_service)
        self._budget_and_estimate(scope, p, region)
        if p.extra_alarms is not None:  # the fleet's own alarms, before the dashboard lists them all
            p.extra_alarms(self)
        self.dashboard = self._dashboard(p.source, p.label, in_service) if options.dashboard else None

    def _reserved(self, props: GuardrailsProps) -> None:
        """Reserved instances are paid whether they run or not: the burn never drops below them."""
        capacity, max_nodes = props.capacity, props.max_nodes
        self.reserved_nodes = 0
        if capacity is not None and capacity.targeted:
            self.reserved_nodes = capacity.reserved_instances or (max_nodes if concrete(max_nodes) else 0)
        if capacity is not None and capacity.capacity_block and capacity.hourly_price_usd is None:
            warn(self, "capacityBlockPrice", instance_type=props.spec.instance_type)

    def _cost_alarms(self, spec: InstanceSpec, options: GuardrailOptions, label: str, region: str | None,
                     in_service: cloudwatch.IMetric) -> None:
        """A per-group hourly burn from in-service instances x the catalog price, and its alarm."""
        self.hourly_price_parameter = None
        price_value: float | str | None = self.price.usd
        if region is None and self.price.usd is not None:
            stack = cdk.Stack.of(self)
            self.hourly_price_parameter = cdk.CfnParameter(
                stack, f"{cdk.Names.unique_id(self)}HourlyPriceUsd", type="Number", default=self.price.usd,
                description=f"{label}: USD per instance-hour of {spec.instance_type} ({self.price.kind} in "
                            f"{self.price.region}, prices as of {self.price.as_of}); set it for your region")
            price_value = self.hourly_price_parameter.value_as_number
        self.metric_hourly_cost = None
        if price_value is None:
            warn(self, "noPrice", instance_type=spec.instance_type, region=self.price.region)
            return
        price_text = cdk.Token.as_string(price_value) if cdk.Token.is_unresolved(price_value) else repr(price_value)
        billed = (f"IF(FILL(inservice, 0) > {self.reserved_nodes}, FILL(inservice, 0), {self.reserved_nodes})"
                  if self.reserved_nodes else "inservice")
        self.metric_hourly_cost = cloudwatch.MathExpression(
            expression=f"{billed} * {price_text}", using_metrics={"inservice": in_service},
            label=f"hourly cost (USD, {self.price.kind})", period=cdk.Duration.minutes(5))
        if options.max_hourly_cost_usd is not None:
            self.add_alarm("CostBurn", self.metric_hourly_cost, options.max_hourly_cost_usd,
                           cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                           description=f"{label}: hourly cost burn above ${options.max_hourly_cost_usd}/h "
                                       f"({spec.instance_type} at ${self.price.usd}/h {self.price.kind}, {self.price.as_of})")

    def _utilization_alarms(self, source, spec: InstanceSpec, options: GuardrailOptions, label: str,
                            auto_scaling_group: autoscaling.AutoScalingGroup | None,
                            in_service: cloudwatch.IMetric) -> None:
        """Idle accelerators (or CPUs) while instances are in service; accelerator memory; idle CPUs."""
        idle_periods = max(1, math.ceil(self.low_utilization_hours * 12))
        names = metrics.metric_names(spec.accelerator.kind if spec.accelerator else None)
        busy = source.metric_accelerator_utilization() if names else source.metric_cpu_utilization()
        if self.reserved_nodes:  # the reservation's utilization: idle nodes and absent nodes both waste it
            n = self.reserved_nodes
            idle_signal = cloudwatch.MathExpression(
                expression=f"FILL(busy, 0) * IF(FILL(inservice, 0) > {n}, {n}, FILL(inservice, 0)) / {n}",
                using_metrics={"inservice": in_service, "busy": busy},
                label="utilization of the reserved instances (%)", period=cdk.Duration.minutes(5))
        else:
            idle_signal = cloudwatch.MathExpression(
                expression="IF(inservice > 0, FILL(busy, 0), 100)", using_metrics={"inservice": in_service, "busy": busy},
                label="utilization while in service (%)", period=cdk.Duration.minutes(5))
        paid_idle = (f"; the reservation's {self.reserved_nodes} instances are paid whether used or not"
                     if self.reserved_nodes else "")
        idle = self.add_alarm("Idle", idle_signal, self.low_utilization_percent, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                              periods=idle_periods, description=f"{label}: {'accelerator' if names else 'CPU'} utilization "
                              f"below {self.low_utilization_percent}% for {self.low_utilization_hours} h while instances run"
                              f"{paid_idle}", missing=cloudwatch.TreatMissingData.BREACHING if self.reserved_nodes else None)
        if options.scale_to_zero_when_idle:
            stop = autoscaling.StepScalingAction(self, "ScaleToZero", auto_scaling_group=auto_scaling_group,
                                                 adjustment_type=autoscaling.AdjustmentType.EXACT_CAPACITY)
            stop.add_adjustment(adjustment=0, upper_bound=0)
            idle.add_alarm_action(actions.AutoScalingAction(stop))
        if not names:
            return
        self.add_alarm("AcceleratorMemoryHigh", source.metric_accelerator_memory_utilization(), self.high_memory_percent,
                       cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                       description=f"{label}: accelerator memory above {self.high_memory_percent}%")
        cpu_signal = cloudwatch.MathExpression(
            expression="IF(inservice > 0, FILL(cpu, 0), 100)",
            using_metrics={"inservice": in_service, "cpu": source.metric_cpu_utilization()},
            label="CPU utilization while in service (%)", period=cdk.Duration.minutes(5))
        self.add_alarm("CpuIdle", cpu_signal, CPU_IDLE_PERCENT, cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                       periods=idle_periods,
                       description=f"{label}: CPU below {CPU_IDLE_PERCENT}% for {self.low_utilization_hours} h while "
                                   "instances run (fallback idle signal if accelerator metrics stop)")

    def _hardware_alarms(self, source, spec: InstanceSpec, label: str,
                         auto_scaling_group: autoscaling.AutoScalingGroup | None) -> None:
        """Uncorrectable accelerator ECC errors (where published) and EC2 status checks (groups only)."""
        names = metrics.metric_names(spec.accelerator.kind if spec.accelerator else None)
        if names and names.hardware_errors:
            ecc = cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=names.hardware_errors,
                                    dimensions_map=source._metric_dimensions(), statistic="Maximum",
                                    period=cdk.Duration.minutes(5))
            self.add_alarm("HardwareErrors", ecc, 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=1,
                           description=f"{label}: uncorrectable accelerator ECC errors; replace the node")
        if auto_scaling_group is not None:  # EC2 metrics address a group by its name
            status = cloudwatch.Metric(namespace="AWS/EC2", metric_name="StatusCheckFailed",
                                       dimensions_map={metrics.ASG_DIMENSION: auto_scaling_group.auto_scaling_group_name},
                                       statistic="Maximum", period=cdk.Duration.minutes(5))
            self.add_alarm("StatusCheckFailed", status, 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=2,
                           description=f"{label}: an instance fails EC2 status checks")

    def _spot_fallback_alarm(self, source, purchase: PurchaseOptions, label: str, in_service: cloudwatch.IMetric) -> None:
        """Mixed groups: more nodes on demand than the base and percentage allow (spot capacity is short). The
        nodes' purchase gauge reports 1 per on-demand node every minute, so a 5-minute Sum / 5 counts them."""
        on_demand = cloudwatch.Metric(namespace=metrics.NAMESPACE, metric_name=metrics.ON_DEMAND_NODES,
                                      dimensions_map=source._metric_dimensions(), statistic="Sum",
                                      period=cdk.Duration.minutes(5))
        share = purchase.on_demand_percentage_above_base / 100
        expected = cloudwatch.MathExpression(
            expression=f"(od / 5) - ({purchase.on_demand_base_capacity} + "
                       f"CEIL({share} * MAX([inservice - {purchase.on_demand_base_capacity}, 0])))",
            using_metrics={"od": on_demand, "inservice": in_service},
            label="on-demand nodes above the configured mix", period=cdk.Duration.minutes(5))
        self.add_alarm("SpotFallback", expected, 0, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=3,
                       description=f"{label}: more nodes on demand than the base of {purchase.on_demand_base_capacity} "
                                   f"plus {purchase.on_demand_percentage_above_base}% (spot capacity is short)")

    def _budget_and_estimate(self, scope: Construct, props: GuardrailsProps, region: str | None) -> None:
        """The budget on the group's cost-allocation tag, the account-wide billing alarm in us-east-1, and the
        EstimatedMonthlyCostUsd output."""
        spec, options, label, max_nodes = props.spec, props.options, props.label, props.max_nodes
        extra_monthly_costs = props.extra_monthly_costs
        self.cost_tag = (COST_TAG, cdk.Names.unique_id(scope))
        cdk.Tags.of(scope).add(*self.cost_tag)
        billed_nodes = max(max_nodes if concrete(max_nodes) else 1, self.reserved_nodes)
        full_size = (self.price.usd or 0) * billed_nodes
        fixed = sum(usd for _, usd in extra_monthly_costs)
        self.monthly_budget_usd = options.monthly_budget_usd or (round(full_size * HOURS_PER_MONTH + fixed, 2) or None)
        self.budget = None
        if options.budget and self.monthly_budget_usd and region not in BUDGETS_UNSUPPORTED_REGIONS:
            self.budget = self._budget(props.topic, props.emails, label, region)
        if region == "us-east-1":
            billing = cloudwatch.Metric(namespace="AWS/Billing", metric_name="EstimatedCharges",
                                        dimensions_map={"Currency": "USD"}, statistic="Maximum", period=cdk.Duration.hours(6))
            self.add_alarm("BillingEstimatedCharges", billing, options.billing_alarm_usd or self.monthly_budget_usd or 1000,
                           cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD, periods=1,
                           description=f"{label}: the ACCOUNT's estimated charges this month passed the threshold")
        self.monthly_cost_at_full_size = (round(full_size * HOURS_PER_MONTH + fixed, 2) if self.price.usd is not None
                                          else None)
        plus = "".join(f"; plus {what}: ${usd:.2f}/month" for what, usd in extra_monthly_costs)
        if self.monthly_cost_at_full_size is not None:
            cdk.CfnOutput(self, "EstimatedMonthlyCostUsd", value=f"{self.monthly_cost_at_full_size:.2f}",
                          description=f"{label} at full size: {billed_nodes} x {spec.instance_type} x {HOURS_PER_MONTH} h at "
                                      f"${self.price.usd}/h ({self.price.kind}, {self.price.region}, prices as of {self.price.as_of})"
                                      f"{plus}")

    # ----------------------------------------------------------------------------------------

    def add_alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, comparison, *, periods: int,
               description: str, missing: cloudwatch.TreatMissingData | None = None) -> cloudwatch.Alarm:
        """An alarm that notifies the topic, listed on the dashboard. Missing data: not breaching, unless given."""
        alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=threshold, comparison_operator=comparison,
                                 evaluation_periods=periods, alarm_description=description,
                                 treat_missing_data=missing or cloudwatch.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(self._action)
        self.alarms[name] = alarm
        return alarm

    def _budget(self, topic: sns.ITopic, emails: tuple[str, ...], label: str, region: str | None) -> budgets.CfnBudget:
        topic.add_to_resource_policy(iam.PolicyStatement(
            actions=["sns:Publish"], principals=[iam.ServicePrincipal("budgets.amazonaws.com")], resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}}))
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)]
        subscribers += [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in emails]
        notifications = [
            budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent, threshold_type="PERCENTAGE"),
                subscribers=subscribers)
            for kind, percent in (("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100))
        ]
        key, value = self.cost_tag
        budget = budgets.CfnBudget(self, "Budget", budget=budgets.CfnBudget.BudgetDataProperty(
            budget_type="COST", time_unit="MONTHLY",
            budget_limit=budgets.CfnBudget.SpendProperty(amount=self.monthly_budget_usd, unit="USD"),
            cost_filters={"TagKeyValue": [f"user:{key}${value}"]}),
            notifications_with_subscribers=notifications)
        if region is None:
            budget.cfn_options.condition = _budgets_condition(cdk.Stack.of(self))
        return budget

    def _dashboard(self, source, label: str, in_service: cloudwatch.IMetric) -> cloudwatch.Dashboard:
        board = cloudwatch.Dashboard(self, "Dashboard")
        names = metrics.metric_names(source.spec.accelerator.kind if source.spec.accelerator else None)
        utilization = [source.metric_accelerator_utilization(), source.metric_accelerator_memory_utilization()] if names else []
        board.add_widgets(
            cloudwatch.GraphWidget(title=f"{label}: utilization (%)", left=[*utilization, source.metric_cpu_utilization()], width=12),
            cloudwatch.GraphWidget(title=f"{label}: instances in service", left=[in_service], width=12))
        cost = [self.metric_hourly_cost] if self.metric_hourly_cost is not None else []
        board.add_widgets(
            cloudwatch.GraphWidget(title=f"{label}: hourly cost (USD)", left=cost, width=12),
            cloudwatch.AlarmStatusWidget(title=f"{label}: alarms", alarms=list(self.alarms.values()), width=12))
        return board


def _budgets_condition(stack: cdk.Stack) -> cdk.CfnCondition:
    """A stack-wide condition: true in regions where CloudFormation has AWS::Budgets::Budget."""
    existing = stack.node.try_find_child("MlcdkBudgetsAvailable")
    if existing is not None:
        return existing
    checks = [cdk.Fn.condition_equals(cdk.Aws.REGION, r) for r in BUDGETS_UNSUPPORTED_REGIONS]
    groups = [cdk.Fn.condition_or(*checks[i:i + 10]) for i in range(0, len(checks), 10)]
    unsupported = cdk.Fn.condition_or(*groups) if len(groups) > 1 else groups[0]
    return cdk.CfnCondition(stack, "MlcdkBudgetsAvailable", expression=cdk.Fn.condition_not(unsupported))
