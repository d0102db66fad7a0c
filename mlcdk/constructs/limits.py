"""Deploy-time limits of AWS services, checked at synth time: one small function per rule.

Each ``*_problem`` function returns why a value breaks the rule (naming what is allowed), or None; the
``check_*`` functions raise ConfigurationError with the parameter and the value in front. Values that are CDK
tokens are never checked (aws-cdk's habit): they are resolved at deploy time.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlcdk.constructs.validation import check, concrete
from mlcdk.errors import ConfigurationError
from mlcdk.presets import paths

# --------------------------------------------------------------------------------------------
# Cron: Auto Scaling scheduled actions (AWS::AutoScaling::ScheduledAction Recurrence)
# --------------------------------------------------------------------------------------------

#: EC2 Auto Scaling takes "traditional" five-field cron, not EventBridge's six-field ``cron(...)`` (EC2 Auto
#: Scaling User Guide, "Scheduled scaling", recurring schedules): minute hour day-of-month month day-of-week.
#: Each field: ``*``, a value, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n``, or a comma list of those.
#: Months and weekdays also take their three-letter English names (JAN, MON), in any case. Sunday is 0 (or
#: SUN); 7 is refused, as are EventBridge's and Quartz's ``?``, ``L``, ``W`` and ``#``, and ``@daily``-style
#: macros, since Auto Scaling's own documentation shows none of them.
CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
CRON_EXAMPLE = "'0 20 * * 1-5' (20:00 Monday to Friday)"
_CRON_ITEM = re.compile(r"(?P<base>\*|(?P<low>[A-Za-z0-9]+)(?:-(?P<high>[A-Za-z0-9]+))?)(?:/(?P<step>[0-9]+))?")


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        value = int(text)
    elif text.upper() in names:
        value = low + names.index(text.upper())
    else:
        return None
    return value if low <= value <= high else None


def _cron_field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    for item in text.split(","):
        found = _CRON_ITEM.fullmatch(item)
        if found is None:
            return f"its {name} field {text!r} is not a value, range, step or list ({allowed})"
        if found["base"] != "*":
            first = _cron_value(found["low"], low, high, names)
            last = first if found["high"] is None else _cron_value(found["high"], low, high, names)
            if first is None or last is None:
                hint = "; Sunday is 0 or SUN" if name == "day-of-week" and "7" in (found["low"], found["high"]) else ""
                return f"its {name} field has {item!r}; allowed: {allowed}{hint}"
            if first > last:
                return f"its {name} field has the range {item!r}, which runs backwards"
        if found["step"] is not None and not 1 <= int(found["step"]) <= high - low + 1:
            return f"its {name} field has the step {item!r}; a step runs from 1 to {high - low + 1}"
    return None


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron expression that Auto Scaling's Recurrence takes, or None."""
    if not isinstance(expression, str):
        return f"must be a string of five cron fields, e.g. {CRON_EXAMPLE}"
    text = expression.strip()
    if text.lower().startswith(("cron(", "rate(", "at(")):
        return (f"is EventBridge schedule syntax; Auto Scaling takes the five plain cron fields (minute hour "
                f"day-of-month month day-of-week) without cron(...), e.g. {CRON_EXAMPLE}")
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        return (f"has {len(fields)} field(s); Auto Scaling takes five cron fields (minute hour day-of-month month "
                f"day-of-week), e.g. {CRON_EXAMPLE}")
    if "?" in text:
        return f"uses '?', which is EventBridge syntax; Auto Scaling's cron uses '*' there, e.g. {CRON_EXAMPLE}"
    for value, (name, low, high, names) in zip(fields, CRON_FIELDS):
        problem = _cron_field_problem(value, name, low, high, names)
        if problem:
            return problem
    return None


def time_zone_problem(name: Any) -> str | None:
    """Why ``name`` is not an IANA time zone name (the tz database that ``zoneinfo`` reads), or None."""
    if isinstance(name, str) and name in zoneinfo.available_timezones():
        return None
    return "is not an IANA time zone name; use one such as 'UTC', 'Europe/Berlin' or 'America/New_York'"


def check_schedule(schedule, parameter: str = "schedule") -> None:
    """ScaleSchedule: both cron expressions and the time zone, as Auto Scaling takes them."""
    for field in ("stop", "start"):
        value = getattr(schedule, field)
        problem = cron_problem(value) if concrete(value) else None
        if problem:
            raise ConfigurationError(f"{parameter}.{field} ({value!r}) {problem}")
    zone = schedule.time_zone
    problem = time_zone_problem(zone) if concrete(zone) else None
    if problem:
        raise ConfigurationError(f"{parameter}.time_zone ({zone!r}) {problem}")


# --------------------------------------------------------------------------------------------
# Checkpoint grace period: lifecycle hook heartbeat ("nodes") or ECS stop timeout ("batch")
# --------------------------------------------------------------------------------------------

#: AWS::AutoScaling::LifecycleHook HeartbeatTimeout: 30 to 7,200 seconds. The Batch engine writes the same value
#: to ECS_CONTAINER_STOP_TIMEOUT, whose documentation gives no maximum: mlcdk keeps the same range there, so a
#: cluster can switch engines without changing its grace period.
GRACE_SECONDS = (30, 7200)


@dataclass(frozen=True)
class GraceInput:
    """A checkpoint grace period as the plan step sees it: whole milliseconds, or None for a deploy-time token,
    and how the user wrote it (read from the cdk.Duration by the construct, so that the plan needs no jsii)."""

    milliseconds: float | None
    shown: str


def grace_period_seconds(grace: GraceInput, engine: str, parameter: str = "checkpoint_grace_period") -> int | None:
    """The grace period in whole seconds, checked against GRACE_SECONDS; None for a token on engine="nodes"
    (the hook takes it at deploy time). The Batch engine writes the value into the nodes' user data, so it must
    be concrete there."""
    if grace.milliseconds is None:
        if engine == "batch":
            raise ConfigurationError(f"{parameter}: engine='batch' writes it into the nodes' ECS configuration at "
                                     "synth time, so it must be a concrete Duration, not a deploy-time token")
        return None
    millis = grace.milliseconds
    low, high = GRACE_SECONDS
    if millis % 1000 or not low <= millis / 1000 <= high:
        raise ConfigurationError(
            f"{parameter} ({grace.shown}) must be a whole number of seconds from {low} s to {high:,} s "
            "(2 hours; the Auto Scaling lifecycle hook's heartbeat limit)")
    return int(millis // 1000)


# --------------------------------------------------------------------------------------------
# EBS gp3 (EC2 User Guide, "General Purpose SSD volumes")
# --------------------------------------------------------------------------------------------

#: gp3 includes 3,000 IOPS at any size; IOPS provisioned above it may reach 500 per GiB of volume size.
GP3_IOPS_PER_GIB = 500
GP3_BASELINE_IOPS = 3000
#: Throughput may reach 0.25 MiB/s per provisioned IOPS.
GP3_MIBS_PER_IOPS = 0.25


def gp3_ratio_problems(size_gib: int, iops: int, throughput_mibs: int, parameter: str) -> list[tuple[bool, str]]:
    """Rows for validation.check: gp3's IOPS-per-GiB and throughput-per-IOPS ratios."""
    numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in (size_gib, iops, throughput_mibs))
    if not numbers:
        return []
    return [
        (iops > GP3_BASELINE_IOPS and iops > GP3_IOPS_PER_GIB * size_gib,
         f"{parameter}_iops ({iops}) exceeds gp3's {GP3_IOPS_PER_GIB} IOPS per GiB: a {size_gib} GiB volume takes "
         f"at most {max(GP3_BASELINE_IOPS, GP3_IOPS_PER_GIB * size_gib):,} IOPS"),
        (throughput_mibs > GP3_MIBS_PER_IOPS * iops,
         f"{parameter}_throughput_mibs ({throughput_mibs}) exceeds gp3's {GP3_MIBS_PER_IOPS} MiB/s per IOPS: "
         f"{iops:,} IOPS allow at most {math.floor(GP3_MIBS_PER_IOPS * iops)} MiB/s"),
    ]


def validate_storage(storage, parameter: str = "storage") -> None:
    """StorageOptions: gp3's IOPS and throughput ratios, and the data mount point. The ranges of the sizes, IOPS
    and throughput (data/bounds.json) were checked by mlcdk.params."""
    size = storage.data_volume_size_gib
    iops, throughput = storage.data_volume_iops, storage.data_volume_throughput_mibs
    mount = mount_point_problem(storage.data_mount_point)
    rows = []
    if size is not None:
        rows += gp3_ratio_problems(size, iops, throughput, f"{parameter}.data_volume")
    rows.append((mount is not None, f"{parameter}.data_mount_point ({storage.data_mount_point!r}) {mount}"))
    check(rows)


# --------------------------------------------------------------------------------------------
# Mount points: one registry of the paths on a node (mlcdk.presets.paths)
# --------------------------------------------------------------------------------------------


def mount_point_problem(path: Any) -> str | None:
    """Why ``path`` cannot be a mount point on the nodes, or None (mlcdk.presets.paths.path_problem)."""
    return paths.path_problem(path)


def node_path_claims(storage, shared_storage=None) -> list[paths.Claim]:
    """The paths a TrainingCluster or InferenceFleet mounts on each node: the data volume (when there is one)
    and the shared file system (also a host volume of every Batch job's container, at the same path)."""
    claims = []
    if storage is not None and storage.data_volume_size_gib is not None:
        claims.append(paths.Claim(storage.data_mount_point, "storage.data_mount_point", "the data volume"))
    if shared_storage is not None:
        claims.append(paths.Claim(shared_storage.mount_point, "shared_storage.mount_point", "the shared file system"))
    return claims


def check_node_paths(storage, shared_storage=None, extra: Sequence[paths.Claim] = ()) -> None:
    """Every path a node gets, checked together: syntax, paths the system owns, and collisions. ``extra``: the
    claims of other option groups (a model cache, a work directory), so that they join the same registry."""
    paths.check_claims([*node_path_claims(storage, shared_storage), *extra])


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def number_problem(value: Any, *, low: float = 0.0, high: float = math.inf, low_inclusive: bool = False) -> str | None:
    """Why ``value`` is not a finite number in the interval, or None. Tokens pass (checked at deploy)."""
    interval = (("[" if low_inclusive else "(") + f"{low:g}, " + (f"{high:g}]" if high != math.inf else "inf)"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number in {interval}"
    if not math.isfinite(value):  # before any jsii call: NaN and infinity kill the jsii kernel
        return f"must be a finite number in {interval}"
    if not concrete(value):
        return None
    if value < low or (value == low and not low_inclusive) or value > high:
        return f"must be in {interval}"
    return None


def check_number(parameter: str, value: Any, **interval) -> None:
    """ConfigurationError naming ``parameter`` and ``value`` unless ``value`` passes :func:`number_problem`."""
    problem = number_problem(value, **interval)
    if problem:
        raise ConfigurationError(f"{parameter} ({value!r}) {problem}")
