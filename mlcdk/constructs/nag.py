"""Targeted cdk-nag acknowledgements: one rule, one construct, one specific reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str, *, finding: str | None = None, pack: str = PACK) -> None:
    """Acknowledge ``rule`` (e.g. "AwsSolutions-IAM5") on ``construct`` and its children only.

    ``finding`` narrows it to one finding, e.g. "Resource::*". The id must carry the pack prefix
    ("AwsSolutions::AwsSolutions-IAM5"): a malformed id silently drops the whole pack's report, so it is
    built here rather than typed at each call site.
    """
    if not reason or len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a specific reason, got {reason!r}")
    rule_id = f"{pack}::{rule}" + (f"[{finding}]" if finding else "")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
