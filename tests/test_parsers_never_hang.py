"""No input may hang a parser (issue #25): every parser of user input answers adversarial input of up to 100 KB
quickly, with an answer or its own error, never a hang, a crash or another exception.

The inputs repeat short fragments (the shapes that make a backtracking regular expression take exponential or
quadratic time: a long run that almost matches, then a character that does not) up to 100 KB, and Hypothesis
picks the fragment, the count and the tail.
"""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcdk import ConfigurationError, launch
from mlcdk.aws.jobs import inputs
from mlcdk.aws.jobs.aws import JobsError
from mlcdk.cli.advise import headroom_fraction
from mlcdk.constructs import fleet_load_balancer, limits
from mlcdk.errors import shown
from mlcdk.params import check_value
from mlcdk.presets import catalog, checks, datafile, identifiers, model_server, models, paths, workloads
from mlcdk.presets.identifiers import ArnRule
from mlcdk.settings import parse_emails, read_settings

LIMIT_S = 1.0  # generous: 2 shared cores; every parser here answers 100 KB in milliseconds
SIZE = 100_000
FRAGMENTS = ["a", "a.", "a-", "/a", "[", "[1-", "]", "0", "9.", "-", "--", ":", "arn:", "s3://", "@", "a@", "..",
             " ", "*", "*/", "a,", "\n", "\\", "$(", "x" * 7, "é", "\u202e", "&a ", "*a,"]
TAILS = ["", "!", "[", "-", ":", "@", "/", " ", "\n", "\x00", "é", "]"]


def adversarial(fragment: str, tail: str, size: int = SIZE) -> str:
    return (fragment * (size // len(fragment) + 1))[:size - len(tail)] + tail


def timed(parse, text: str) -> None:
    start = time.perf_counter()
    try:
        parse(text)
    except (ConfigurationError, launch.LaunchError, JobsError):
        pass
    elapsed = time.perf_counter() - start
    assert elapsed < LIMIT_S, f"{elapsed:.2f} s on {shown(text)}"


def _number(text: str) -> None:
    launch.plan({"PATH": "", "AWS_BATCH_JOB_NUM_NODES": text, "AWS_BATCH_JOB_NODE_INDEX": "0"}, ["--", "true"],
                own_address=lambda: "10.0.0.1")


def _main_address(text: str) -> None:
    launch.plan({"PATH": "", "AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1",
                 launch.MAIN_ADDRESS: text}, ["--", "true"])


def _slurm(text: str) -> None:
    launch.plan({"PATH": "", "SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": text}, ["--", "true"])


def _problem(function):
    def parse(text: str) -> None:
        problem = function(text)
        assert problem is None or isinstance(problem, str)
    return parse


def _file(suffix: str):
    def parse(text: str) -> None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / f"presets{suffix}"
            path.write_text(text, encoding="utf-8")
            workloads.load_presets(path)
    return parse


PARSERS = {
    "launch: Slurm host list": _slurm,
    "launch: node count": _number,
    "launch: main address": _main_address,
    "S3 URI": _problem(identifiers.s3_uri_problem),
    "S3 bucket": _problem(identifiers.bucket_problem),
    "ARN": _problem(lambda t: identifiers.arn_problem(t, ArnRule("resource-groups", "group/", "us-east-1"))),
    "e-mail": _problem(identifiers.email_problem),
    "host name": _problem(identifiers.host_problem),
    "reservation ID": _problem(identifiers.reservation_id_problem),
    "mount point": _problem(paths.path_problem),
    "cron": _problem(limits.cron_problem),
    "time zone": _problem(limits.time_zone_problem),
    "image reference": _problem(workloads.image_reference_problem),
    "web ACL ARN": lambda t: fleet_load_balancer.arn_region(fleet_load_balancer.WEB_ACL_ARN, t),
    "certificate ARN": lambda t: fleet_load_balancer.arn_region(fleet_load_balancer.CERTIFICATE_ARN, t),
    "instance type": lambda t: catalog.get(t),
    "preset name": lambda t: workloads.get(t),
    "context: nodes": lambda t: read_settings({"nodes": t}),
    "context: region": lambda t: read_settings({"region": t}),
    "context: e-mail": lambda t: parse_emails(t),
    "parameter: a string": lambda t: check_value("availability_zone_id", t, str),
    "model source (s3:// or Hugging Face ID)": lambda t: model_server.parse_source(t),
    "advise: --model (name, Hugging Face ID or config.json)": lambda t: models.get_model(t),
    "advise: a count (--params, --tokens)": lambda t: checks.parse_count(t, "--params"),
    "advise: --memory-headroom": headroom_fraction,
    "job: --env NAME=VALUE": lambda t: inputs.environment([t]),
    "job: --env value": lambda t: inputs.environment(["NOTE=" + t]),
    "job: --timeout": inputs.duration_seconds,
    "job: job ID": inputs.job_id,
    "job: --name": inputs.job_name,
    "preset file (JSON)": _file(".json"),
    "preset file (YAML)": _file(".yaml"),
}


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS)
@pytest.mark.parametrize("fragment", ["a", "[1-", "a.", "/a", "&a ", "*a,"])
def test_a_100_kb_run_of_one_fragment(parse, fragment):
    timed(parse, adversarial(fragment, "!"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(PARSERS)), fragment=st.one_of(st.sampled_from(FRAGMENTS), st.text(min_size=1,
       max_size=6)), tail=st.sampled_from(TAILS), size=st.integers(min_value=1, max_value=SIZE))
def test_any_run_of_up_to_100_kb(name, fragment, tail, size):
    timed(PARSERS[name], adversarial(fragment, tail, max(size, len(tail) + 1)))


def test_yaml_shapes_that_explode_are_refused_quickly():
    shapes = ["a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"l{i}: &l{i} [" + ",".join([f"*{'a' if i == 0 else f'l{i - 1}'}"] * 10) + "]\n" for i in range(30)),
        "- " * 40_000 + "x", "{" * 50_000, "a: " + "&x " * 30_000 + "b"]
    for text in shapes:
        assert len(text) <= SIZE
        timed(_file(".yaml"), text)


def test_data_files_are_bounded_before_parsing():
    assert datafile.PRESET_FILE.max_bytes == 256 * 1024
    assert datafile.DATA_FILE.max_bytes == 64 * 1024 * 1024
