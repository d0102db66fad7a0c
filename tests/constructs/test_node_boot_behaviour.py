"""The node bootstrap run for real in bash (issue #21, points 6 to 8): the guard that keeps a broken Batch node out
of ECS, the checksum and signature checks that come before anything downloaded runs, and the ECS settings.

Only the commands that would touch the machine or the network are stubs on PATH (systemctl, shutdown, curl, tar,
dpkg, the EFA installer): bash, sha256sum and gpg are the real ones, so a check that would pass a tampered file on a
node passes it here too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mlcdk.constructs import user_data
from mlcdk.presets import catalog, node_software

#: Each stub appends its name and arguments to $STUB_LOG. curl copies $STUB_FILES/<last part of the URL> to -o.
STUBS = {
    "systemctl": 'echo "systemctl $*" >> "$STUB_LOG"',
    "shutdown": 'echo "shutdown $*" >> "$STUB_LOG"',
    "dpkg": 'echo "dpkg $*" >> "$STUB_LOG"',
    "tar": 'echo "tar $*" >> "$STUB_LOG"; mkdir -p "$4/aws-efa-installer"; '
           'printf \'#!/bin/sh\\necho "efa_installer.sh $*" >> "$STUB_LOG"\\n\' > "$4/aws-efa-installer/efa_installer.sh"; '
           'chmod +x "$4/aws-efa-installer/efa_installer.sh"',
    "curl": 'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) url="$1"; shift;; esac; done; '
            'echo "curl $url" >> "$STUB_LOG"; cp "$STUB_FILES/${url##*/}" "$out"',
}


@pytest.fixture
def node(tmp_path):
    """Run lines of bootstrap in bash with the stubs; returns (returncode, stub log lines, stderr)."""
    bin_dir, files = tmp_path / "bin", tmp_path / "files"
    bin_dir.mkdir(), files.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "stub.log"

    def run(lines: list[str]) -> tuple[int, list[str], str]:
        script = tmp_path / "boot.sh"
        script.write_text("\n".join(["set -euo pipefail", *lines]) + "\n")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
               "STUB_FILES": str(files), "TMPDIR": str(tmp_path)}
        result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
        return result.returncode, log.read_text().splitlines() if log.exists() else [], result.stderr

    run.files = files
    return run


# --------------------------------------------------------------------------------------------
# Point 6: a node whose bootstrap fails never registers with ECS and shuts down
# --------------------------------------------------------------------------------------------


def test_a_failing_step_masks_the_ecs_agent_stops_its_start_and_shuts_down(node):
    code, log, err = node([*user_data.guard_bootstrap(), "echo step one", "false", "echo never"])
    assert code == 1
    assert log == ["systemctl mask ecs.service", "systemctl stop --no-block ecs.service", "shutdown -h now"]
    assert "mlcdk: bootstrap failed (exit 1): not registering with ECS" in err


def test_a_bootstrap_that_succeeds_leaves_the_agent_alone(node):
    code, log, _ = node([*user_data.guard_bootstrap(), "true"])
    assert (code, log) == (0, [])


def test_the_guard_comes_before_every_step_that_can_fail_on_batch_nodes_only():
    spec = catalog.get("p5.48xlarge")
    batch = user_data.bootstrap(spec, user_data.NodeBoot(
        efa=True, data_mount_point="/data", extra=["echo user"], batch_efa_devices=32,
        batch_stop_timeout_s=600, shared_storage=user_data.mount_lustre("fs", "m", "/fsx")))
    trap = batch.index(next(line for line in batch if line.startswith("trap ")))
    first_step = next(i for i, line in enumerate(batch) if line.startswith("# CloudWatch agent"))
    assert batch[:2] == ["set -euo pipefail", "exec > >(tee -a /var/log/mlcdk-bootstrap.log) 2>&1"]
    assert trap < first_step  # the EFA check, the mounts and the user's commands all come later
    nodes = user_data.bootstrap(spec, user_data.NodeBoot(efa=True, data_mount_point=None, extra=[]))
    assert not any(line.startswith("trap ") for line in nodes)  # persistent nodes: no ECS, no self-shutdown


def test_a_missing_shared_file_system_fails_the_bootstrap(node):
    lines = user_data.mount_lustre("fs-0123.fsx.us-east-1.amazonaws.com", "abcd", "/mlcdk-test-fsx")
    mount_check = [line for line in lines if "is not mounted" in line]
    assert mount_check == ['mountpoint -q /mlcdk-test-fsx || { echo "mlcdk: /mlcdk-test-fsx is not mounted" >&2; '
                           'exit 1; }']
    code, log, err = node([*user_data.guard_bootstrap(), *mount_check])
    assert code == 1 and log[-1] == "shutdown -h now" and "/mlcdk-test-fsx is not mounted" in err


# --------------------------------------------------------------------------------------------
# Point 7: the ECS settings that keep job containers away from the instance role
# --------------------------------------------------------------------------------------------


def test_batch_nodes_configure_the_ecs_agent_against_instance_metadata():
    lines = user_data.ecs_settings(600)
    assert lines[1:3] == ["mkdir -p /etc/ecs", "echo ECS_CONTAINER_STOP_TIMEOUT=600s >> /etc/ecs/ecs.config"]
    assert "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config" in lines
    assert "echo ECS_ENABLE_TASK_IAM_ROLE=true >> /etc/ecs/ecs.config" in lines
    assert "echo ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true >> /etc/ecs/ecs.config" in lines


# --------------------------------------------------------------------------------------------
# Point 8: pinned downloads, verified before they run
# --------------------------------------------------------------------------------------------


def test_the_pinned_versions_and_digests_are_the_published_ones():
    software = node_software.software()
    assert software.efa_installer.url == "https://efa-installer.amazonaws.com/aws-efa-installer-1.41.0.tar.gz"
    assert software.efa_installer.sha256 == "3506354cdfbe31ff552fe75f5d0d9bb7efd29cf79bd99457347d29c751c38f9f"
    # The CloudWatch user guide's fingerprint, 9376 16F3 450B 7D80 6CBD 9725 D581 6730 3B78 9C72, without spaces.
    assert software.cloudwatch_agent.key_fingerprint == "937616F3450B7D806CBD9725D58167303B789C72"
    assert software.cloudwatch_agent.urls("arm64") == (
        "https://amazoncloudwatch-agent.s3.amazonaws.com/ubuntu/arm64/1.300072.0b1766/amazon-cloudwatch-agent.deb",
        "https://amazoncloudwatch-agent.s3.amazonaws.com/ubuntu/arm64/1.300072.0b1766/amazon-cloudwatch-agent.deb.sig")
    text = "\n".join(user_data.bootstrap(catalog.get("p5.48xlarge"), user_data.NodeBoot(
        efa=True, data_mount_point=None, extra=[], batch_efa_devices=32, batch_stop_timeout_s=600)))
    downloads = re.findall(r"https://\S+", text)
    assert downloads and not [url for url in downloads if "latest" in url]  # no unpinned download in a bootstrap


def test_a_tampered_efa_installer_never_runs(node):
    node.files.joinpath("aws-efa-installer-1.41.0.tar.gz").write_bytes(b"not the installer")
    code, log, err = node([*user_data.guard_bootstrap(), *user_data.efa_host_setup(8)])
    assert code == 1
    assert log[0] == "curl https://efa-installer.amazonaws.com/aws-efa-installer-1.41.0.tar.gz"
    assert not any(entry.startswith(("tar", "efa_installer.sh")) for entry in log)
    assert "does not match its published SHA-256" in err
    assert log[-1] == "shutdown -h now"


def test_an_installer_with_the_published_digest_is_unpacked_and_run(node, monkeypatch):
    content = b"the published installer"
    node.files.joinpath("aws-efa-installer-1.41.0.tar.gz").write_bytes(content)
    real = node_software.software()
    pinned = dataclasses.replace(real, efa_installer=dataclasses.replace(
        real.efa_installer, sha256=hashlib.sha256(content).hexdigest()))
    monkeypatch.setattr(node_software, "software", lambda: pinned)
    code, log, err = node(user_data.efa_host_setup(8)[:-1])  # without the device count (no /dev/infiniband here)
    assert code == 0, err
    assert [entry.split()[0] for entry in log] == ["curl", "tar", "efa_installer.sh"]
    assert log[2] == "efa_installer.sh -y --minimal"


@pytest.fixture
def signer():
    """A throwaway GPG key (not AWS's) and a function that signs a file with it. Its home is a short path (gpg-agent's
    socket path must fit a Unix socket name), removed afterwards with the agent it started."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is needed: the node bootstrap verifies the CloudWatch agent with it")
    home = Path(tempfile.mkdtemp(prefix="mlcdk-gpg-"))
    try:
        yield _signer(home)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _signer(home: Path):
    gpg = ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "mlcdk test <test@example.com>", "ed25519", "sign", "never"],
                   check=True, capture_output=True, timeout=60)
    listing = subprocess.run([*gpg, "--with-colons", "--fingerprint"], check=True, capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))

    def sign(package: Path, signature: Path, public_key: Path) -> None:
        subprocess.run([*gpg, "--output", str(signature), "--detach-sign", str(package)], check=True, capture_output=True)
        subprocess.run([*gpg, "--armor", "--output", str(public_key), "--export", fingerprint], check=True,
                       capture_output=True)

    sign.fingerprint = fingerprint
    return sign


def agent_files(node, signer) -> None:
    package = node.files / "amazon-cloudwatch-agent.deb"
    package.write_bytes(b"a package")
    signer(package, node.files / "amazon-cloudwatch-agent.deb.sig", node.files / "amazon-cloudwatch-agent.gpg")


def test_an_agent_package_signed_by_another_key_is_refused(node, signer):
    agent_files(node, signer)  # a valid signature, but not by the key with the documented fingerprint
    code, log, err = node([*user_data.guard_bootstrap(), *user_data.verified_agent_package("amd64")])
    assert code == 1
    assert not any(entry.startswith("dpkg") for entry in log)
    assert "has no valid signature by the documented key" in err


def test_an_agent_package_with_a_broken_signature_is_refused(node, signer, monkeypatch):
    agent_files(node, signer)
    node.files.joinpath("amazon-cloudwatch-agent.deb").write_bytes(b"a tampered package")
    real = node_software.software()
    monkeypatch.setattr(node_software, "software", lambda: dataclasses.replace(real, cloudwatch_agent=dataclasses.replace(
        real.cloudwatch_agent, key_fingerprint=signer.fingerprint)))
    code, log, _ = node(user_data.verified_agent_package("amd64"))
    assert code == 1 and not any(entry.startswith("dpkg") for entry in log)


def test_an_agent_package_signed_by_the_pinned_key_is_installed(node, signer, monkeypatch):
    agent_files(node, signer)
    real = node_software.software()
    monkeypatch.setattr(node_software, "software", lambda: dataclasses.replace(real, cloudwatch_agent=dataclasses.replace(
        real.cloudwatch_agent, key_fingerprint=signer.fingerprint)))
    code, log, err = node(user_data.verified_agent_package("amd64"))
    assert code == 0, err
    assert log[-1].startswith("dpkg -i -E ") and log[-1].endswith("/agent.deb")
