"""The cdk-nag packs mlcdk answers for, and the rules they share (``data/nag_packs.json``).

Pure Python (no aws_cdk). AwsSolutions and NIST 800-53 rev 5 run in every mlcdk app; HIPAA Security and PCI
DSS 3.2.1 are opt-in (``mlcdk.constructs.nag.add_checks(app, hipaa=True, pci_dss=True)``). The last three run
the same rule functions of cdk-nag, each under its own prefix, so "NIST.800.53.R5-S3BucketReplicationEnabled"
and "PCI.DSS.321-S3BucketReplicationEnabled" are one check of one resource. :func:`same_rule` names a rule in
every pack that runs it, which lets one acknowledgement (one fact, one reason) cover them all:

>>> same_rule("NIST.800.53.R5-S3DefaultEncryptionKMS")
('NIST.800.53.R5-S3DefaultEncryptionKMS', 'HIPAA.Security-S3DefaultEncryptionKMS', 'PCI.DSS.321-S3DefaultEncryptionKMS')
>>> same_rule("NIST.800.53.R5-ALBWAFEnabled")   # HIPAA Security does not run it
('NIST.800.53.R5-ALBWAFEnabled', 'PCI.DSS.321-ALBWAFEnabled')
>>> same_rule("AwsSolutions-S1")
('AwsSolutions-S1',)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mlcdk.presets import datafile
from mlcdk.presets.datafile import DATA_DIR

DATA_FILE = DATA_DIR / "nag_packs.json"


@dataclass(frozen=True)
class NagPack:
    """One cdk-nag pack: its name (the rule prefix), its plugin class in ``cdk_nag``, and what turns it on."""

    name: str
    plugin: str
    option: str | None  #: the add_checks keyword that turns it on; None: always on
    title: str
    rules: frozenset[str]  #: the shared rule names it runs (empty for AwsSolutions, whose rules are its own)
    source: str
    reason: str


@functools.cache
def packs() -> Mapping[str, NagPack]:
    """Every pack, in the order the plugins run: the default packs first."""
    with datafile.reading(DATA_FILE):
        document = datafile.read_document(DATA_FILE)
        return MappingProxyType({name: NagPack(name, entry["plugin"], entry["option"], entry["title"],
                                               frozenset(entry["rules"]), entry["source"], entry["reason"])
                                 for name, entry in document["packs"].items()})


def same_rule(rule: str) -> tuple[str, ...]:
    """``rule`` ("<pack>-<name>") followed by the same rule in every other pack that runs it.

    Raises ValueError for a pack mlcdk does not answer for, or for a name that the pack does not run (a typo
    would acknowledge nothing).
    """
    pack, _, name = rule.rpartition("-")
    known = packs()
    if pack not in known:
        raise ValueError(f"rule {rule!r} is not from one of the packs mlcdk runs ({', '.join(known)})")
    if not known[pack].rules:  # AwsSolutions: rules of its own
        return (rule,)
    if name not in known[pack].rules:
        raise ValueError(f"the {known[pack].title} pack runs no rule {name!r} (cdk-nag's lib/packs; {DATA_FILE.name})")
    return (rule, *(f"{other}-{name}" for other in known if other != pack and name in known[other].rules))
