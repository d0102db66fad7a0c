"""Software a node downloads at boot: pinned versions, where they come from, and how each is verified.

Pure Python (no aws_cdk). Read once from ``data/node_software.json`` (every entry with its source and date) into
frozen dataclasses; mlcdk.constructs.user_data turns them into shell.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mlcdk.presets import datafile
from mlcdk.presets.datafile import DATA_DIR

DATA_FILE = DATA_DIR / "node_software.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")


@dataclass(frozen=True)
class Checksummed:
    """A download verified by its published SHA-256."""

    version: str
    url: str
    sha256: str
    source: str


@dataclass(frozen=True)
class Signed:
    """A download verified by a detached GPG signature from a key with a known fingerprint."""

    version: str
    url: str
    signature_url: str
    public_key_url: str
    key_fingerprint: str
    source: str

    def urls(self, arch: str) -> tuple[str, str]:
        """The package and signature URLs for ``arch`` ("amd64" or "arm64")."""
        return (self.url.format(arch=arch, version=self.version),
                self.signature_url.format(arch=arch, version=self.version))


@dataclass(frozen=True)
class NodeSoftware:
    efa_installer: Checksummed
    cloudwatch_agent: Signed
    as_of: str


@functools.cache
def software() -> NodeSoftware:
    with datafile.reading(DATA_FILE):
        return _software(datafile.read_document(DATA_FILE))


def _software(doc: dict) -> NodeSoftware:
    efa, agent = doc["efa_installer"], doc["cloudwatch_agent"]
    result = NodeSoftware(
        efa_installer=Checksummed(efa["version"], efa["url"], efa["sha256"], efa["source"]),
        cloudwatch_agent=Signed(agent["version"], agent["url"], agent["signature_url"], agent["public_key_url"],
                                agent["key_fingerprint"], agent["source"]),
        as_of=doc["as_of"])
    if not _SHA256.fullmatch(result.efa_installer.sha256) or result.efa_installer.version not in result.efa_installer.url:
        raise datafile.error(DATA_FILE, "efa_installer needs a lowercase SHA-256 and a URL naming its version")
    if not _FINGERPRINT.fullmatch(result.cloudwatch_agent.key_fingerprint):
        raise datafile.error(DATA_FILE, "cloudwatch_agent.key_fingerprint must be 40 uppercase hexadecimal digits")
    return result
