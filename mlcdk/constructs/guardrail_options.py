"""What the guardrails are asked for, checked before any resource exists (no aws_cdk: the plan steps use it).

GuardrailOptions (public), the thresholds in force and the hourly price the cost metrics use. The alarms, budget
and dashboard themselves are built by mlcdk.constructs.guardrails.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcdk.constructs import limits
from mlcdk.constructs.options import CapacityOptions, PurchaseOptions
from mlcdk.presets import catalog
from mlcdk.presets.catalog import InstanceSpec

#: Region whose price stands in for env-agnostic stacks (a stack parameter lets a deploy correct it).
REFERENCE_REGION = "us-east-1"


@dataclass(frozen=True)
class GuardrailOptions:
    """What the guardrails create. Thresholds left as None come from the preset, then these defaults.

    :param low_utilization_percent: accelerator (or CPU, for CPU types) utilization below which the
        group counts as idle. Default: the preset's, else 10.
    :param low_utilization_hours: how long it must stay idle, while instances are in service, before
        the alarm fires. Default: the preset's, else 2.
    :param scale_to_zero_when_idle: also set the group's desired capacity to 0 when the idle alarm fires.
        Default: off (notify only).
    :param high_memory_percent: accelerator memory utilization alarm threshold. Default: the preset's,
        else 90.
    :param max_hourly_cost_usd: alarm when the hourly cost burn exceeds this. Default: no burn alarm (the
        burn metric still feeds the dashboard and the budget still applies).
    :param monthly_budget_usd: the AWS Budget's monthly limit. Default: the group at full size for a
        month (730 h) at the catalog price.
    :param budget: create the monthly budget. Default: on (skipped where CloudFormation has no budgets).
    :param billing_alarm_usd: account-wide EstimatedCharges alarm, created only in us-east-1 stacks.
        Default: the monthly budget amount.
    :param dashboard: create a CloudWatch dashboard. Default: on.
    :param hardware_alarms: ECC (Neuron) and EC2 status-check alarms. Default: on.
    :param spot_fallback_alarm: for mixed groups, alarm when more nodes run on demand than the
        configured base and percentage allow (spot capacity is short). Default: on.
    """

    low_utilization_percent: float | None = None
    low_utilization_hours: float | None = None
    scale_to_zero_when_idle: bool = False
    high_memory_percent: float | None = None
    max_hourly_cost_usd: float | None = None
    monthly_budget_usd: float | None = None
    budget: bool = True
    billing_alarm_usd: float | None = None
    dashboard: bool = True
    hardware_alarms: bool = True
    spot_fallback_alarm: bool = True


@dataclass(frozen=True)
class HourlyPrice:
    """The price the cost metrics use, and where it came from."""

    usd: float | None
    kind: str  #: "on-demand", "spot sample", "reserved at on-demand rate", "reservation price", "unknown", ...
    region: str
    as_of: str


def hourly_price(spec: InstanceSpec, region: str | None, purchase: PurchaseOptions,
                 capacity: CapacityOptions | None = None) -> HourlyPrice:
    """Held capacity uses its given price, else the on-demand price (an ODCR's rate, paid used or not).
    Spot groups use the region's lowest spot sample where known; everything else (and mixed groups, as an
    upper bound) uses the on-demand price. Env-agnostic stacks use the reference region."""
    where = region or REFERENCE_REGION
    as_of = catalog.default_catalog().provenance.prices_as_of
    if capacity is not None and capacity.hourly_price_usd is not None:
        kind = "Capacity Block price" if capacity.capacity_block else "reservation price"
        return HourlyPrice(float(capacity.hourly_price_usd), f"{kind} from capacity.hourly_price_usd", where, as_of)
    if capacity is not None and capacity.targeted:
        on_demand = spec.on_demand_price(where)
        kind = "on-demand rate, block price not given" if capacity.capacity_block else "reserved at on-demand rate"
        return HourlyPrice(on_demand, kind if on_demand is not None else "unknown", where, as_of)
    if purchase.option == "spot" and spec.spot_price(where) is not None:
        return HourlyPrice(spec.spot_price(where), "spot sample", where, as_of)
    on_demand = spec.on_demand_price(where)
    return HourlyPrice(on_demand, "on-demand" if on_demand is not None else "unknown", where, as_of)


@dataclass(frozen=True)
class Thresholds:
    """The alarm thresholds in force: GuardrailOptions, then the preset's, then the defaults."""

    low_utilization_percent: float
    low_utilization_hours: float
    high_memory_percent: float


def validate_guardrail_options(options: GuardrailOptions, preset_thresholds=None) -> Thresholds:
    """Resolve and check the thresholds and amounts, before any resource exists: percentages in (0, 100], hours
    from 0.25 to 24, costs positive. Every number must be finite; NaN and infinity are refused here, before
    they reach jsii (whose kernel dies on them). Tokens pass unchecked."""
    defaults = preset_thresholds
    thresholds = Thresholds(
        _first(options.low_utilization_percent, defaults and defaults.low_utilization_percent, 10),
        _first(options.low_utilization_hours, defaults and defaults.low_utilization_hours, 2),
        _first(options.high_memory_percent, defaults and defaults.high_memory_percent, 90))
    limits.check_number("guardrails.low_utilization_percent", thresholds.low_utilization_percent, high=100)
    limits.check_number("guardrails.low_utilization_hours", thresholds.low_utilization_hours, low=0.25,
                        low_inclusive=True, high=24)
    limits.check_number("guardrails.high_memory_percent", thresholds.high_memory_percent, high=100)
    for name in ("max_hourly_cost_usd", "monthly_budget_usd", "billing_alarm_usd"):
        value = getattr(options, name)
        if value is not None:
            limits.check_number(f"guardrails.{name}", value)
    return thresholds


def _first(*values):
    return next(v for v in values if v is not None)
