"""make deploy's `mlcdk check` step (mlcdk.emulator.acceptance): it accepts the one outcome the emulator can give
(the job SUCCEEDED and no node printed a result) and fails on any other. The whole run is
tests/integration/test_emulator_deploy.py."""
from __future__ import annotations

import json

import pytest

from mlcdk.emulator.acceptance import _report
from mlcdk.emulator.failures import Failure

NOTE = ("the job succeeded but no node printed a result: its containers did not run the check (a local emulator such "
        "as moto marks Batch jobs SUCCEEDED without running them)")


def report(**changes) -> str:
    body = {"job_id": "j", "status": "SUCCEEDED", "status_reason": "", "results": [], "notes": [NOTE], "cause": None,
            "facts": {"instance_type": "trn1.32xlarge", "accelerator": "neuron", "efa": True, "multi_node": True},
            "expected": {"network_gbytes": 100.0, "minimum_gbytes": 25.0, "why": "25% ..."}, "nodes": 2,
            "passed": False}
    return json.dumps({**body, **changes})


def test_the_emulators_outcome_is_accepted():
    assert _report(1, report(), "")["job_id"] == "j"


@pytest.mark.parametrize(("code", "stdout", "says"), [
    (0, report(passed=True, notes=[]), r"\(exit 0\) job j SUCCEEDED"),  # a pass cannot happen without a container
    (1, report(status="FAILED", notes=[], status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
               cause={"name": "capacity", "summary": "EC2 had no capacity", "advice": "..."}), "EC2 had no capacity"),
    (2, "", "printed no report"),
    (1, "not json", "printed no report"),
])
def test_any_other_outcome_fails_the_step(code, stdout, says):
    with pytest.raises(Failure, match=says):
        _report(code, stdout, "error: something")
