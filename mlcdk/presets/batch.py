"""AWS Batch's own limits on a job, shared by the Batch engine (JobOptions) and the job commands (pure Python).

Each from the Batch API reference (botocore's model carries the same text): "RetryStrategy" (attempts 1 to 10),
"JobTimeout" (at least 60 seconds), "SubmitJob" (arrayProperties size 2 to 10,000; dependsOn at most 20 jobs) and
"ContainerOverrides" (environment variable names may not start with AWS_BATCH, "reserved for variables that
Batch sets").
"""

from __future__ import annotations

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
