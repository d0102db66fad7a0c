"""AWS Batch's own limits on a job, shared by the Batch engine (JobOptions) and the job commands (pure Python).

Each from the Batch API reference (botocore's model carries the same text): "RetryStrategy" (attempts 1 to 10),
"JobTimeout" (at least 60 seconds), "SubmitJob" (arrayProperties size 2 to 10,000; dependsOn at most 20 jobs) and
"ContainerOverrides" (environment variable names may not start with AWS_BATCH, "reserved for variables that
Batch sets").
"""

from __future__ import annotations

import re

from mlcdk.presets import bounds

_ATTEMPTS, _TIMEOUT = bounds.number("retry_attempts"), bounds.number("timeout_hours")
#: Batch retry strategy attempts (RetryStrategy.Attempts): 1-10, from data/bounds.json (the one home).
JOB_ATTEMPTS = (int(_ATTEMPTS.low), int(_ATTEMPTS.high))
#: A job attempt's limit: Batch's minimum of 60 s, up to 14 days (mlcdk's bound: two weeks of a cluster's cost).
JOB_TIMEOUT_HOURS = (_TIMEOUT.low, _TIMEOUT.high)
#: SubmitJob arrayProperties.size.
ARRAY_SIZE = (2, 10_000)
#: SubmitJob dependsOn: "A job can depend upon a maximum of 20 jobs."
MAX_DEPENDENCIES = 20
#: Environment variable names Batch keeps for itself.
RESERVED_ENV_PREFIX = "AWS_BATCH"
#: An environment variable name as POSIX shells take it (letters, digits, underscores; not starting with a digit).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
#: Names mlcdk's job definition and launcher use (MLCDK_LAUNCHER, MLCDK_NPROC_PER_NODE, MLCDK_WORKDIR_URI...).
MLCDK_ENV_PREFIX = "MLCDK_"


def env_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a job's environment variable, or None."""
    if not ENV_NAME.fullmatch(name):
        return "is not an environment variable name (letters, digits and underscores, not starting with a digit)"
    if name.upper().startswith(RESERVED_ENV_PREFIX):
        return (f"starts with {RESERVED_ENV_PREFIX}, which is reserved for the variables that Batch sets (Batch API "
                "reference, ContainerOverrides.environment)")
    return None
