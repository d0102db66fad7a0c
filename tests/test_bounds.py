"""Every public number and duration has a range with a source (data/bounds.json), which mlcdk.params checks
before any resource exists; strings have a length bound and hold no control characters."""
from __future__ import annotations

import dataclasses
import typing

import aws_cdk as cdk
import pytest

from mlcdk import ConfigurationError, InferenceFleet, PrivateNetwork, TrainingCluster
from mlcdk.params import _hints, check_value
from mlcdk.presets import bounds, catalog

CONSTRUCTS = (TrainingCluster, InferenceFleet, PrivateNetwork)


def public_parameters() -> dict[str, typing.Any]:
    """Every parameter and option-group field of the constructs, as mlcdk.params names it, with its type."""
    found: dict[str, typing.Any] = {}

    def walk(name, hint):
        if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType")):
            for arg in typing.get_args(hint):
                walk(name, arg)
        elif typing.get_origin(hint) in (tuple, list) or "Sequence" in str(typing.get_origin(hint)):
            for arg in typing.get_args(hint):
                if arg is not Ellipsis:
                    walk(f"{name}[0]", arg)
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            for field in dataclasses.fields(hint):
                walk(f"{name}.{field.name}", _hints(hint)[field.name])
        elif hint in (int, float, str, cdk.Duration):
            found[name] = hint

    for construct in CONSTRUCTS:
        for name, hint in _hints(construct.__init__).items():
            if name not in ("return", "scope", "construct_id"):
                walk(name, hint)
    return found


def test_every_public_number_and_duration_has_a_bound():
    parameters = public_parameters()
    numbers = [n for n, h in parameters.items() if h in (int, float)]
    durations = [n for n, h in parameters.items() if h is cdk.Duration]
    assert len(numbers) >= 30 and durations == ["checkpoint_grace_period", "scaling.warmup"]
    assert [n for n in numbers if bounds.number(n) is None] == []
    assert [n for n in durations if bounds.duration(n) is None] == []


def test_every_bound_has_a_source_and_a_reason():
    for section in bounds.table().values():
        for bound in section.values():
            assert bound.source.startswith(("https://", "mlcdk")) and len(bound.reason) > 10, bound
            assert bound.low <= bound.high


def test_the_price_bound_is_above_every_catalog_price():
    highest = max(spec.on_demand_price(region) or 0 for spec in catalog.default_catalog() for region in spec.prices)
    assert highest == 142.416  # p6-b300.48xlarge in us-west-2, the catalog's highest on-demand price
    assert bounds.number("capacity.hourly_price_usd").high >= 5 * highest


def test_the_constants_read_the_one_table():
    from mlcdk import settings
    from mlcdk.constructs import options

    assert (settings.MAX_NODES, settings.MAX_CAPACITY, settings.MAX_SHARED_STORAGE_GIB) == (512, 1000, 2_400_000)
    assert (options.GP3_MAX_GIB, options.GP3_IOPS, options.GP3_THROUGHPUT_MIBS) == (16384, (3000, 16000), (125, 1000))
    assert (options.JOB_ATTEMPTS, options.JOB_TIMEOUT_HOURS) == ((1, 10), (1 / 60, 336))


CHECKS = [
    # (parameter, value, type, fragment of the message); worked by hand from data/bounds.json
    ("capacity.hourly_price_usd", 1e12, float,
     "capacity.hourly_price_usd (1000000000000.0) must be a number above 0 and at most 1000"),
    ("shared_storage.storage_capacity_gib", 2_400_000_000, int,
     "shared_storage.storage_capacity_gib (2400000000) must be a whole number from 1 to 2400000"),
    ("nodes", 10**30, int, "nodes (1000000000000000000000000000000) must be a whole number from 1 to 512"),
    ("nodes", 10**5000, int, "nodes (<an integer of about 5,001 digits>) must be a whole number from 1 to 512"),
    ("guardrails.monthly_budget_usd", 1.46e15, float, "must be a number above 0 and at most 730000000"),
    ("job.timeout_hours", 1e6, float, "job.timeout_hours (1000000.0) must be a number from 0.0166667 to 336"),
    ("fleet_alarms.p99_latency_seconds", 5000, float, "must be a number above 0 and at most 4000"),
    ("guardrails.low_utilization_percent", 0, float, "must be a number above 0 and at most 100"),
    ("purchase.on_demand_percentage_above_base", 101, int, "must be a whole number from 0 to 100"),
    ("health_check_path", "/" + "h" * 2000, str, "must be at most 1,024 characters (HealthCheckPath takes 1 to 1,024"),
    ("availability_zone_id", "use1-az4\n", str, "must be a string without leading or trailing whitespace"),
    ("job.image", "repo/image:tag\n", str, "must be a string without leading or trailing whitespace"),
    ("instance_type", "g5.\x00xlarge", str, "must be a string without control or format characters (it holds '\\x00'"),
    ("capacity.reservation_id", "cr-0123456789abcdef0\u202e", str, "it holds '\\u202e'"),
    ("user_data_commands[0]", "echo hi\x1b[2J", str, "it holds '\\x1b'"),
    ("model_server_command", "   ", str, "model_server_command ('   ') must be a non-blank string"),
    ("model_server_command", "x" * 20_000, str, "must be at most 16,384 characters"),
    ("load_balancer.web_acl_arn", "a" * 100_000, str, "'... (100,000 characters)) must be at most 2,048 characters"),
]


@pytest.mark.parametrize(("name", "value", "hint", "message"), CHECKS, ids=[f"{c[0]}#{i}" for i, c in enumerate(CHECKS)])
def test_check_value_refuses_out_of_bounds_values(name, value, hint, message):
    with pytest.raises(ConfigurationError) as error:
        check_value(name, value, hint)
    assert message in str(error.value)
    assert len(str(error.value)) < 400


ALLOWED = [
    ("capacity.hourly_price_usd", 98.32, float),
    ("shared_storage.storage_capacity_gib", 2_400_000, int),
    ("nodes", 512, int),
    ("model_server_command", "vllm serve model \\\n  --port 8080\n", str),
    ("user_data_commands[0]", "\techo hi", str),
    ("health_check_path", "/" + "h" * 1023, str),
    ("description", "é ü 模型", str),
]


@pytest.mark.parametrize(("name", "value", "hint"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_check_value_allows_values_in_bounds(name, value, hint):
    check_value(name, value, hint)


def test_durations_are_bounded_in_whole_seconds():
    with pytest.raises(ConfigurationError, match=r"scaling.warmup \(2 hours\) must be a whole number of seconds from "
                                                 r"0 s to 3,600 s \(the rolling update's PauseTime is at most one hour"):
        check_value("scaling.warmup", cdk.Duration.hours(2), cdk.Duration)
    check_value("scaling.warmup", cdk.Duration.minutes(60), cdk.Duration)
