"""The end of a run: ``cdk destroy`` the deployed stacks from their cloud assembly, check that they are deleted and
that nothing they created is left (templates' Retain resources aside), delete the bootstrap stacks. If moto cannot
delete the stacks, say so and reset it (``POST /moto-api/reset``): the server stops right after either way."""
from __future__ import annotations

import sys

from mlcdk.emulator import server
from mlcdk.emulator.cdk import run_cdk
from mlcdk.emulator.failures import Failure, failed, step
from mlcdk.emulator.readback import Kept, still_there
from mlcdk.emulator.session import Session

BOOTSTRAP_STACK = "CDKToolkit"


def stack_status(cfn, stack: str) -> str:  # noqa: ANN001 - a boto3 client
    """The status of the newest stack named ``stack`` (ListStacks keeps deleted stacks as DELETE_COMPLETE)."""
    summaries = [s for page in cfn.get_paginator("list_stacks").paginate() for s in page["StackSummaries"]
                 if s["StackName"] == stack]
    if not summaries:
        return "NOT FOUND"
    return max(summaries, key=lambda s: s["CreationTime"])["StackStatus"]


def _names(kept: list[Kept]) -> str:
    return "; ".join(f"{k.stack}: {k.label}" for k in kept)


def _destroy(run: Session) -> None:
    names = [s.display_name for s in run.stacks]
    run_cdk(run.cli, "destroy", "cdk destroy " + " ".join(names),
            ["destroy", "--app", str(run.outdir), *names, "--exclusively", "--force", "--no-notices"],
            run.env, cwd=run.work)
    with step("destroy"):
        states = {s.display_name: stack_status(run.clients(s.region)("cloudformation"), s.name) for s in run.stacks}
    for name, state in states.items():
        print(f"    {name}: {state}")
    if any(state != "DELETE_COMPLETE" for state in states.values()):
        raise failed("destroy", "stacks not deleted: " + ", ".join(f"{s} {v}" for s, v in states.items()))


def _leftovers(run: Session) -> None:
    with step("destroy (leftover check)"):
        left, retained = [], []
        for stack in run.stacks:
            view = run.views[stack.display_name]
            gone_wrong, kept = still_there(run.clients(stack.region), view.kept)
            left += gone_wrong
            retained += kept
    if left:
        raise failed("destroy", "left behind after cdk destroy: " + _names(left))
    checked = sorted({k.label.rsplit(" ", 1)[0] for view in run.views.values() for k in view.kept})
    print(f"    left behind: nothing (checked: {', '.join(checked) or 'nothing to check'})")
    if retained:
        print("    kept, as CloudFormation keeps them (their template's DeletionPolicy is Retain; they go with the "
              "emulator):")
        for each in retained:
            print(f"      {each.stack}: {each.label}")


def _delete_bootstrap(run: Session) -> None:
    with step(f"destroy ({BOOTSTRAP_STACK})"):
        for region in sorted({s.region for s in run.stacks}):
            cfn = run.clients(region)("cloudformation")
            cfn.delete_stack(StackName=BOOTSTRAP_STACK)
            print(f"    {BOOTSTRAP_STACK} ({region}): {stack_status(cfn, BOOTSTRAP_STACK)}")


def teardown(run: Session) -> None:
    try:
        _destroy(run)
        _leftovers(run)
        _delete_bootstrap(run)
        print("    teardown: cdk destroy")
    except Failure as error:
        print(f"    {error}", file=sys.stderr)
        print("    teardown: FALLBACK to POST /moto-api/reset (moto could not delete the stacks cleanly)")
        with step("destroy (fallback POST /moto-api/reset)"):
            server.moto_api(run.moto.url, "/moto-api/reset")
            remaining = run.clients()("cloudformation").describe_stacks()["Stacks"]
        print(f"    after reset: {len(remaining)} stack(s) in the emulator")
