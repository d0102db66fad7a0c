"""Targeted cdk-nag acknowledgements: one rule, one construct, one specific reason."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACKS = ("AwsSolutions", "NIST.800.53.R5")


def acknowledge(construct: IConstruct, rules: str | tuple[str, ...], reason: str, *, finding: str | None = None) -> None:
    """Acknowledge ``rules`` (e.g. "AwsSolutions-IAM5", or several that flag the same thing) on ``construct``
    and its children only.

    ``finding`` narrows it to one finding, e.g. "Resource::*". The id must carry the pack prefix
    ("AwsSolutions::AwsSolutions-IAM5"): a malformed id silently drops the whole pack's report, so it is
    built here, from the rule's own prefix, rather than typed at each call site.
    """
    if not reason or len(reason) < 20:
        raise ValueError(f"acknowledgement of {rules} needs a specific reason, got {reason!r}")
    if finding and not finding.startswith(("Resource::", "Action::", "Policy::")):
        finding = f"Resource::{finding}"
    acknowledgments = []
    for rule in (rules,) if isinstance(rules, str) else rules:
        pack = rule.rpartition("-")[0]
        if pack not in PACKS:
            raise ValueError(f"rule {rule!r} is not from one of the packs mlcdk runs ({', '.join(PACKS)})")
        rule_id = f"{pack}::{rule}" + (f"[{finding}]" if finding else "")
        acknowledgments.append(cdk.Acknowledgment(id=rule_id, reason=reason))
    cdk.Validations.of(construct).acknowledge(*acknowledgments)  # one jsii round trip per construct


def resource_finding(scope: IConstruct, value: object) -> str:
    """The ``Resource::...`` finding id that AwsSolutions-IAM5 reports for a policy resource ``value``.

    cdk-nag 3 matches acknowledgements by exact id, and names a resource by flattening its CloudFormation
    form: a Ref becomes ``<LogicalId>``, a GetAtt ``<LogicalId.Attr>``, and Fn::Join parts are joined.
    The nag gate in the tests fails if this ever drifts from what cdk-nag reports.
    """

    def flatten(node: object) -> str:
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict) and len(node) == 1:
            (kind, arg), = node.items()
            if kind == "Ref":
                return f"<{flatten(arg)}>"
            if kind == "Fn::GetAtt":
                return f"<{flatten(arg[0])}.{flatten(arg[1])}>"
            if kind == "Fn::Join":
                return arg[0].join(flatten(part) for part in arg[1])
        raise ValueError(f"cannot name the IAM5 finding for {node!r}")

    return "Resource::" + flatten(cdk.Stack.of(scope).resolve(value))


def checks(scope: IConstruct | None = None) -> list:
    """One plugin per pack mlcdk answers for (AwsSolutions and NIST 800-53 rev 5), in the order of PACKS."""
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    return [AwsSolutionsChecks(scope), NIST80053R5Checks(scope)]


def add_checks(scope: IConstruct) -> None:
    """Run every pack of :func:`checks` on ``scope`` at synth time."""
    cdk.Validations.of(scope).add_plugins(*checks(scope))
