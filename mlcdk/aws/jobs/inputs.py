"""Checks of the job commands' values, made before any AWS client exists: each problem is a JobsError of one line.

Every pattern here is matched with ``fullmatch`` (or anchored with ``\\Z``), never with ``$``, which also
matches before a trailing newline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mlcdk.aws.jobs.aws import JobsError
from mlcdk.errors import ConfigurationError
from mlcdk.launch import WORKDIR_ENV
from mlcdk.presets import batch, discovery
from mlcdk.presets.secrets import secret_problem

#: A Batch job name (SubmitJob jobName): up to 128 letters, digits, hyphens and underscores, starting with a
#: letter or digit.
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
#: A job ID as DescribeJobs takes it: a UUID, optionally an array child ``:index`` or a node ``#index``.
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}(?:[:#][0-9]{1,5})?")
#: `--timeout`: a number and a unit (s, m, h, d), e.g. 90m, 2h, 1.5d, 3600s; a bare number is seconds.
DURATION = re.compile(r"(?P<number>[0-9]{1,9}(?:\.[0-9]{1,6})?)(?P<unit>[smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def region(value: str | None) -> str | None:
    """``--region``: None (boto3's configured region) or a region the catalog knows."""
    if value is None:
        return None
    from mlcdk.presets import catalog

    try:
        return catalog.default_catalog().check_region(value, "--region")
    except ConfigurationError as error:
        raise JobsError(str(error)) from None


def cluster(value: str | None) -> str | None:
    """``--cluster``: a name as `mlcdk clusters` lists it (a Batch tag value), or its stack's name."""
    if value is not None and (not value.strip() or value != value.strip() or len(value) > discovery.MAX_TAG_VALUE):
        raise JobsError(f"--cluster {value[:60]!r} is not a cluster's name as `mlcdk clusters` lists it (not empty, "
                        f"no surrounding spaces, at most {discovery.MAX_TAG_VALUE} characters)")
    return value


def job_name(value: str) -> str:
    if not JOB_NAME.fullmatch(value):
        raise JobsError(f"--name {value!r} is not a Batch job name: up to 128 letters, digits, hyphens and underscores, "
                        "starting with a letter or digit")
    return value


def job_id(value: str, flag: str = "JOB") -> str:
    if not JOB_ID.fullmatch(value):
        raise JobsError(f"{flag} {value[:80]!r} is not a Batch job ID (the ID that `mlcdk submit` printed)")
    return value


def image(value: str | None) -> str | None:
    from mlcdk.presets.workloads import image_reference_problem

    if value is not None and (problem := image_reference_problem(value)) is not None:
        raise JobsError(f"--image {value!r} {problem}")
    return value


def environment(pairs: Sequence[str]) -> dict[str, str]:
    """``--env K=V`` (repeatable) as a mapping. Refused: no ``=``, a name that is not a variable name, one that
    Batch or mlcdk keeps, a name given twice, a newline or NUL in the value, and what looks like a secret."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        shown = f"--env {name[:60]!r}"
        if not equals:
            raise JobsError(f"--env {pair[:60]!r} has no '=': write --env NAME=VALUE")
        if (problem := batch.env_name_problem(name)) is not None:
            raise JobsError(f"{shown} {problem}")
        if name in WORKDIR_ENV:
            raise JobsError(f"{shown} is set by `mlcdk submit --workdir`; it cannot be given with --env")
        if name in found:
            raise JobsError(f"{shown} is given twice")
        if any(character in value for character in "\n\r\0"):
            raise JobsError(f"{shown}: the value holds a line break or a NUL character, which a container's "
                            "environment cannot carry as given; pass it in a file in --workdir instead")
        if (problem := secret_problem(name, value)) is not None:
            raise JobsError(f"{shown}: {problem}")
        found[name] = value
    return found


def duration_seconds(value: str | None) -> int | None:
    """``--timeout``: 90m, 2h, 1.5d, 3600s or 3600; from 60 s (Batch's minimum) to 14 days."""
    if value is None:
        return None
    match = DURATION.fullmatch(value.strip().lower()) if value == value.strip() else None
    low, high = (round(hours * 3600) for hours in batch.JOB_TIMEOUT_HOURS)
    seconds = round(float(match["number"]) * UNIT_SECONDS[match["unit"]]) if match else None
    if seconds is None or not low <= seconds <= high:
        raise JobsError(f"--timeout {value[:40]!r} must be a duration from {low} s (Batch's minimum) to "
                        f"{high // 86400} days, e.g. 90m, 2h or 1.5d")
    return seconds


def retries(value: int | None) -> int | None:
    """``--retries N``: retries after the first attempt (Batch's attempts are N + 1, at most 10)."""
    most = batch.JOB_ATTEMPTS[1] - 1
    if value is not None and not 0 <= value <= most:
        raise JobsError(f"--retries {value} is out of range: 0 to {most} (Batch makes at most "
                        f"{batch.JOB_ATTEMPTS[1]} attempts)")
    return value


def array_size(value: int | None) -> int | None:
    low, high = batch.ARRAY_SIZE
    if value is not None and not low <= value <= high:
        raise JobsError(f"--array {value} is out of range: {low} to {high:,} child jobs (Batch's array sizes)")
    return value


def dependencies(values: Sequence[str]) -> tuple[str, ...]:
    if len(values) > batch.MAX_DEPENDENCIES:
        raise JobsError(f"--depends-on is given {len(values)} times: a Batch job may depend on at most "
                        f"{batch.MAX_DEPENDENCIES} jobs")
    if len(set(values)) != len(values):
        raise JobsError("--depends-on names the same job twice")
    return tuple(job_id(value, "--depends-on") for value in values)
