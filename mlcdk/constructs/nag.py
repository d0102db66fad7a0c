"""The cdk-nag packs mlcdk answers for, and targeted acknowledgements: one rule, one construct, one specific reason.

AwsSolutions and NIST 800-53 rev 5 run in every mlcdk app. HIPAA Security and PCI DSS 3.2.1 are opt-in:
``add_checks(app, hipaa=True, pci_dss=True)``. The packs and the rules they share are data
(``mlcdk/presets/data/nag_packs.json``, read by :mod:`mlcdk.presets.nag_packs`).
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from mlcdk.params import checked
from mlcdk.presets import nag_packs

#: The packs on in every app, in the order their plugins run.
PACKS = tuple(name for name, pack in nag_packs.packs().items() if pack.option is None)
#: The packs an app turns on with add_checks' keywords (HIPAA Security, PCI DSS 3.2.1).
OPT_IN_PACKS = tuple(name for name, pack in nag_packs.packs().items() if pack.option is not None)
#: Every pack an acknowledgement may name.
ALL_PACKS = PACKS + OPT_IN_PACKS


def acknowledge(construct: IConstruct, rules: str | tuple[str, ...], reason: str, *, finding: str | None = None) -> None:
    """Acknowledge ``rules`` (e.g. "AwsSolutions-IAM5", or several that flag the same thing) on ``construct``
    and its children only.

    A rule that NIST 800-53 rev 5, HIPAA Security and PCI DSS 3.2.1 share is acknowledged in each of them that
    runs it: "NIST.800.53.R5-S3BucketReplicationEnabled" also covers "HIPAA.Security-S3BucketReplicationEnabled"
    and "PCI.DSS.321-S3BucketReplicationEnabled". They are one cdk-nag rule checking one resource, so the
    reason holds for each, and the opt-in packs need no acknowledgement of their own.

    ``finding`` narrows it to one finding, e.g. "Resource::*". The id must carry the pack prefix
    ("AwsSolutions::AwsSolutions-IAM5"): a malformed id silently drops the whole pack's report, so it is
    built here, from the rule's own prefix, rather than typed at each call site. A rule its pack does not run
    (a typo) is refused.
    """
    if not reason or len(reason) < 20:
        raise ValueError(f"acknowledgement of {rules} needs a specific reason, got {reason!r}")
    if finding and not finding.startswith(("Resource::", "Action::", "Policy::")):
        finding = f"Resource::{finding}"
    rule_ids = {}  # ordered and without repeats: "NIST-X" and "PCI-X" given together name PCI-X once
    for rule in (rules,) if isinstance(rules, str) else rules:
        for same in nag_packs.same_rule(rule):
            rule_ids[f"{same.rpartition('-')[0]}::{same}" + (f"[{finding}]" if finding else "")] = None
    acknowledgments = [cdk.Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids]
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


def checks(scope: IConstruct | None = None, *, hipaa: bool = False, pci_dss: bool = False) -> list:
    """One plugin per pack: AwsSolutions and NIST 800-53 rev 5 (the order of PACKS), then the opt-in packs asked
    for (HIPAA Security, PCI DSS 3.2.1)."""
    try:
        import cdk_nag
    except ImportError as error:
        raise ImportError(f"mlcdk's nag checks need cdk-nag 3: pip install 'mlcdk[nag]' ({error})") from None

    wanted = {None: True, "hipaa": hipaa, "pci_dss": pci_dss}
    return [getattr(cdk_nag, pack.plugin)(scope) for pack in nag_packs.packs().values() if wanted[pack.option]]


@checked
def add_checks(scope: IConstruct, *, hipaa: bool = False, pci_dss: bool = False) -> None:
    """Run cdk-nag on ``scope`` at synth time: ``cdk synth`` fails on any finding that is not acknowledged.

    AwsSolutions and NIST 800-53 rev 5 always run. ``hipaa=True`` adds the HIPAA Security pack, ``pci_dss=True``
    the PCI DSS 3.2.1 pack; mlcdk's constructs pass both with zero unacknowledged findings. Default: neither.
    Call it once per app (each call adds its plugins again).
    """
    cdk.Validations.of(scope).add_plugins(*checks(scope, hipaa=hipaa, pci_dss=pci_dss))
