#!/usr/bin/env python3
"""Write cdk.context.json: AZ lookups for every catalog region, for the local emulator's account.

The CDK CLI caches `availability-zones:account=A:region=R` lookups in cdk.context.json. A stack with an
explicit account and region needs them to synthesize offline; in-process synths without them silently
use `dummy1a` AZs. mlcdk pins subnets by AZ ID, so these names matter only to CDK's own bookkeeping.
They are answered here by moto's DescribeAvailabilityZones for account 123456789012 (the emulator's
and the tests' account). A real account's lookups are added by `cdk synth` with credentials.

Usage: python scripts/generate_context.py [--check]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
from moto import mock_aws

from mlcdk.presets import catalog

# Zones only: moto need not make its ~5,200 sample AMIs in each of the 30 regions (moto/settings.py; 9 s -> 2 s).
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
EMULATOR_ACCOUNT = "123456789012"
PATH = Path(__file__).resolve().parent.parent / "cdk.context.json"


def context() -> dict[str, list[str]]:
    lookups = {}
    with mock_aws():
        for region in catalog.regions():
            ec2 = boto3.client("ec2", region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")
            zones = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
            names = sorted(z["ZoneName"] for z in zones["AvailabilityZones"])
            lookups[f"availability-zones:account={EMULATOR_ACCOUNT}:region={region}"] = names
    return dict(sorted(lookups.items()))


def main() -> int:
    text = json.dumps(context(), indent=2) + "\n"
    if "--check" in sys.argv:
        if PATH.read_text() != text:
            print(f"{PATH} is stale: run python scripts/generate_context.py", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
