"""What looks like a secret in a job's environment, from ``data/secrets.json`` (pure Python).

Environment variables given to a Batch job are stored in plain text in the job (DescribeJobs returns them to anyone
allowed to describe jobs) and in its ECS task. A secret belongs in AWS Secrets Manager, given to the job through its
job definition's ``secrets`` (Batch User Guide, "Specifying sensitive data with Secrets Manager"); with mlcdk that is
``JobOptions(secrets={"HF_TOKEN": "<secret ARN>"})``. :func:`secret_problem` says why a name or value looks like one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from mlcdk.presets.batch import MLCDK_ENV_PREFIX, env_name_problem
from mlcdk.presets.catalog import DATA_DIR
from mlcdk.presets.datafile import EntryReader, read_mapping

SECRETS_MANAGER_HINT = ("put the value in AWS Secrets Manager and give it to the job through the job definition's "
                        "secrets: TrainingCluster(job=JobOptions(secrets={NAME: '<secret ARN>'}))")


@dataclass(frozen=True)
class SecretPatterns:
    words: frozenset[str]  #: whole parts of a name (between underscores), e.g. TOKEN
    pairs: tuple[str, ...]  #: two adjacent parts, e.g. API_KEY
    values: tuple[tuple[str, re.Pattern[str]], ...]  #: (kind, pattern) of values such as AKIA... or hf_...


def load_secret_patterns(path: Path = DATA_DIR / "secrets.json") -> SecretPatterns:
    names = EntryReader(path, "names", read_mapping(path, "names"),
                         {"words": list, "pairs": list, "source": str, "reason": str})
    values = []
    for kind, entry in read_mapping(path, "values").items():
        read = EntryReader(path, f"values[{kind!r}]", entry, {"pattern": str, "source": str, "reason": str})
        values.append((kind, re.compile(read("pattern", str))))
    for field in ("source", "reason"):
        names(field, str)
    return SecretPatterns(frozenset(names("words", list)), tuple(names("pairs", list)), tuple(values))


@functools.cache
def secret_patterns() -> SecretPatterns:
    return load_secret_patterns()


def secret_problem(name: str, value: str) -> str | None:
    """Why ``name=value`` looks like a secret (never quoting the value), or None."""
    patterns = secret_patterns()
    parts = name.upper().split("_")
    adjacent = {f"{a}_{b}" for a, b in zip(parts, parts[1:])}
    said = sorted(patterns.words.intersection(parts)) + [pair for pair in patterns.pairs if pair in adjacent]
    if said:
        return f"the name says {said[0]}, so the value looks like a secret; {SECRETS_MANAGER_HINT.replace('NAME', repr(name))}"
    for kind, pattern in patterns.values:
        if pattern.search(value):
            return f"the value looks like a secret ({kind}); {SECRETS_MANAGER_HINT.replace('NAME', repr(name))}"
    return None


#: A Secrets Manager secret's complete ARN: the name, a hyphen and the six characters Secrets Manager adds (Secrets
#: Manager User Guide, "Secret ARNs"; a partial ARN would need a wildcard to grant).
SECRET_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:secretsmanager:[a-z]{2}(?:-[a-z]+)+-[0-9]:[0-9]{12}:secret:"
                        r"[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}")


def job_secret_problem(name: object, arn: object) -> str | None:
    """Why ``name: arn`` cannot be one of JobOptions.secrets, or None."""
    if not isinstance(name, str) or (problem := env_name_problem(name)) is not None:
        return f"the name {name!r} {problem or 'must be a string'}"
    if name.upper().startswith(MLCDK_ENV_PREFIX):
        return f"the name {name!r} starts with {MLCDK_ENV_PREFIX}, which mlcdk's job definition and launcher use"
    if not isinstance(arn, str) or not SECRET_ARN.fullmatch(arn):
        return (f"{name}: {str(arn)[:120]!r} is not a Secrets Manager secret's complete ARN "
                "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX; `aws secretsmanager describe-secret "
                "--secret-id NAME --query ARN` prints it)")
    return None
