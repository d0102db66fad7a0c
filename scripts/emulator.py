#!/usr/bin/env python3
"""`make deploy`: `mlcdk emulate` on this repo's app, plus this repo's job check.

Default target: the local emulator (mlcdk.emulator, no AWS account, no internet). It deploys TrainingStack and
InferenceStack with `-c emulator=true -c removal_policy=destroy -c shared_storage_gib=1200` (moto skips the FSx
resources, and the read-back says so), reads them back, submits a 2-node job with the real CLI (`mlcdk submit
--stack TrainingStack --nodes 2 ... -- python3 train.py`; moto marks it SUCCEEDED without running anything), runs
`mlcdk check` on the cluster (no node runs the all-reduce either: the check says so, and the run says why), and
tears everything down. The equivalent command line, without the job check:

    mlcdk emulate --stack TrainingStack --stack InferenceStack -c emulator=true -c removal_policy=destroy \\
        -c shared_storage_gib=1200 -c region=us-east-1 -c account=123456789012

`--target aws` deploys both stacks to the account of your own AWS credentials instead, after you type its id.

Usage: python scripts/emulator.py [--region us-east-1] [--target emulator|aws]   (or: make deploy [TARGET=aws])
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlcdk.emulator import EmulateOptions, main as emulate_main
from mlcdk.emulator.cdk import ACCOUNT
from mlcdk.emulator.acceptance import AcceptanceCheck
from mlcdk.emulator.jobcheck import SubmitJobCheck

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("TrainingStack", "InferenceStack")
DEFAULT_REGION = "us-east-1"
#: The AMI parameter moto knows, stacks whose buckets and keys are deleted with them, and the shared FSx file system.
EMULATOR_CONTEXT = {"emulator": "true", "removal_policy": "destroy", "shared_storage_gib": "1200"}
JOB_NAME = "mlcdk-emulator-check"


def emulator_options(region: str) -> EmulateOptions:
    context = dict(EMULATOR_CONTEXT, region=region, account=ACCOUNT)
    job = SubmitJobCheck(("submit", "--stack", "TrainingStack", "--region", region, "--nodes", "2", "--name", JOB_NAME,
                          "--json", "--", "python3", "train.py"))
    check = AcceptanceCheck(("--stack", "TrainingStack", "--region", region, "--nodes", "2", "--timeout-minutes", "2"))
    return EmulateOptions(directory=ROOT, stacks=STACKS, context=tuple(f"{k}={v}" for k, v in context.items()),
                          region=region, checks=(job, check))


def run_aws(region: str | None) -> int:
    """Deploy both stacks to the account of the user's credentials, after a typed confirmation (no emulator)."""
    import boto3

    if not sys.stdin.isatty():
        print("error: --target aws needs an interactive terminal to confirm the account; refusing", file=sys.stderr)
        return 1
    session = boto3.Session(region_name=region) if region else boto3.Session()
    region = region or session.region_name
    if session.get_credentials() is None or not region:
        print("error: --target aws: no AWS credentials or no region (set AWS_PROFILE and AWS_REGION, or pass "
              "--region)", file=sys.stderr)
        return 1
    identity = session.client("sts").get_caller_identity()
    account = identity["Account"]
    print(f"This deploys {', '.join(STACKS)} to the REAL account {account} ({identity['Arn']}) in {region}.")
    print("Accelerated instances cost real money (the stacks' EstimatedMonthlyCostUsd outputs show the estimate).")
    if input(f"Type the account id {account} to continue: ").strip() != account:
        print("error: that is not the account id; nothing was deployed", file=sys.stderr)
        return 1
    cdk = str(ROOT / "node_modules" / ".bin" / "cdk")
    context = ["-c", f"region={region}", "-c", f"account={account}"]
    for command in (["bootstrap", f"aws://{account}/{region}"], ["deploy", *STACKS, *context]):
        if subprocess.run([cdk, *command], cwd=ROOT, env=dict(os.environ)).returncode != 0:
            print(f"error: cdk {command[0]} failed (its output is above)", file=sys.stderr)
            return 1
    print(f"Deployed. Remove with: npx cdk destroy {' '.join(STACKS)} -c region={region} -c account={account}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                        help="emulator (default): a local moto server; aws: your account, after confirmation")
    parser.add_argument("--region", default=None, help=f"deploy region (emulator default: {DEFAULT_REGION})")
    args = parser.parse_args(argv)
    if args.target == "aws":
        return run_aws(args.region)
    return emulate_main(emulator_options(args.region or DEFAULT_REGION))


if __name__ == "__main__":
    sys.exit(main())
