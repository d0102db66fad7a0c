"""Shell commands that bootstrap a node: CloudWatch agent, accelerator metrics, EFA check, data volume.

Pure Python: it returns lines of shell for ``ec2.UserData.add_commands``. Every step logs to the
console and to /var/log/mlcdk-bootstrap.log.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcdk.presets import metrics, node_software
from mlcdk.presets.catalog import InstanceSpec

ASSETS = Path(__file__).parent / "assets"
AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/mlcdk.json"
AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
NEURON_CONVERTER = "/opt/mlcdk/neuron_statsd.py"


def _heredoc(path: str, text: str, marker: str = "MLCDK_EOF") -> list[str]:
    return [f"mkdir -p {shlex.quote(str(Path(path).parent))}", f"cat > {shlex.quote(path)} <<'{marker}'", text.rstrip("\n"), marker]


def cloudwatch_agent(spec: InstanceSpec, cluster: str | None = None,
                     prometheus: metrics.PrometheusScrape | None = None) -> list[str]:
    """Install the agent if the AMI lacks it (a pinned, signature-verified package; data/node_software.json),
    write mlcdk's config (and, with ``prometheus``, the scrape configuration of the model server), start it."""
    acc = spec.accelerator
    config = metrics.agent_config(acc.kind if acc else None, acc.manufacturer if acc else None, cluster, prometheus)
    scrape = _heredoc(metrics.PROMETHEUS_CONFIG, prometheus.scrape_config()) if prometheus else []
    arch = "arm64" if "arm64" in spec.architectures else "amd64"
    return [
        "# CloudWatch agent: accelerator, CPU, memory and disk metrics with the AutoScalingGroupName dimension",
        f"if [ ! -x {AGENT_CTL} ]; then",
        "  if command -v dnf >/dev/null; then dnf install -y amazon-cloudwatch-agent  # the distribution's signed repository",
        "  else",
        *[f"    {line}" for line in verified_agent_package(arch)],
        "  fi",
        "fi",
        *scrape,
        *_heredoc(AGENT_CONFIG, json.dumps(config, indent=1, sort_keys=True)),
        f"{AGENT_CTL} -a fetch-config -m ec2 -s -c file:{AGENT_CONFIG}",
    ]


def verified_agent_package(arch: str) -> list[str]:
    """Download the pinned CloudWatch agent .deb and its signature, and install it only if gpg reports a valid
    signature (VALIDSIG) by the key with the documented fingerprint (CloudWatch user guide, "Verifying the signature
    of the CloudWatch agent package"); the key's own download is trusted for nothing but that fingerprint."""
    agent = node_software.software().cloudwatch_agent
    package, signature = agent.urls(arch)
    return [
        f"# CloudWatch agent {agent.version}, verified against key {agent.key_fingerprint}",
        "CW_DIR=$(mktemp -d)",
        f'curl -fsSL -o "$CW_DIR/agent.deb" {package}',
        f'curl -fsSL -o "$CW_DIR/agent.deb.sig" {signature}',
        f'curl -fsSL -o "$CW_DIR/agent.gpg" {agent.public_key_url}',
        # gpgv checks against a keyring file: no gpg-agent, no trust database, nothing left running.
        'if grep -q "BEGIN PGP PUBLIC KEY BLOCK" "$CW_DIR/agent.gpg"; then '
        'gpg --batch --homedir "$CW_DIR" --yes --dearmor -o "$CW_DIR/agent.keyring" "$CW_DIR/agent.gpg"; '
        'else cp "$CW_DIR/agent.gpg" "$CW_DIR/agent.keyring"; fi',
        # The status is captured first: grep -q in a pipe could end gpgv with SIGPIPE, which pipefail counts as failure.
        'CW_STATUS=$(gpgv --keyring "$CW_DIR/agent.keyring" --status-fd 1 "$CW_DIR/agent.deb.sig" "$CW_DIR/agent.deb" '
        '2>/dev/null || true)',
        f'grep -Eq "^\\[GNUPG:\\] VALIDSIG .*{agent.key_fingerprint}" <<< "$CW_STATUS" '
        '|| { echo "mlcdk: the CloudWatch agent package has no valid signature by the documented key" >&2; exit 1; }',
        'dpkg -i -E "$CW_DIR/agent.deb"',
    ]


def neuron_metrics(spec: InstanceSpec, cluster: str | None = None) -> list[str]:
    """neuron-monitor piped into the StatsD converter, as a systemd service that restarts on failure."""
    device_bytes = int((spec.accelerator.memory_mib_per_device or 0) * spec.accelerator.count * 1024 * 1024)
    tags = f' --tags "{metrics.statsd_tags(cluster)}"' if cluster else ""  # inside bash -c '...': double quotes
    unit = "\n".join([
        "[Unit]", "Description=mlcdk: neuron-monitor metrics to the CloudWatch agent", "After=network-online.target",
        "[Service]",
        f"ExecStart=/bin/bash -c '/opt/aws/neuron/bin/neuron-monitor | /usr/bin/python3 {NEURON_CONVERTER} "
        f"--device-memory-bytes {device_bytes} --port {metrics.STATSD_PORT}{tags}'",
        "Restart=always", "RestartSec=10",
        "[Install]", "WantedBy=multi-user.target",
    ])
    return [
        "# Neuron metrics: neuron-monitor -> StatsD -> CloudWatch agent",
        *_heredoc(NEURON_CONVERTER, (ASSETS / "neuron_statsd.py").read_text(), "MLCDK_PY_EOF"),
        *_heredoc("/etc/systemd/system/mlcdk-neuron-metrics.service", unit),
        "systemctl daemon-reload && systemctl enable --now mlcdk-neuron-metrics.service",
    ]


def purchase_gauge(cluster: str | None = None) -> list[str]:
    """Report every minute whether this node runs on demand (1) or on spot (0), for the spot-fallback alarm,
    and, with ``cluster``, that it runs at all (``mlcdk_nodes`` 1), both tagged with the cluster dimension."""
    tags = metrics.statsd_tags(cluster)
    node = f"echo \"{metrics.NODES}:1|g{tags}\" > /dev/udp/127.0.0.1/{metrics.STATSD_PORT}; " if cluster else ""
    loop = ("while true; do T=$(curl -fsX PUT http://169.254.169.254/latest/api/token "
            "-H \"X-aws-ec2-metadata-token-ttl-seconds: 300\"); "
            "L=$(curl -fs -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/instance-life-cycle); "
            f"V=1; [ \"$L\" = spot ] && V=0; echo \"{metrics.ON_DEMAND_NODES}:$V|g{tags}\" > /dev/udp/127.0.0.1/{metrics.STATSD_PORT}; "
            f"{node}sleep 60; done")
    unit = "\n".join(["[Unit]", "Description=mlcdk: on-demand/spot gauge for the CloudWatch agent",
                      "[Service]", f"ExecStart=/bin/bash -c '{loop}'", "Restart=always", "RestartSec=10",
                      "[Install]", "WantedBy=multi-user.target"])
    return [
        "# Purchase gauge: 1 on demand, 0 on spot (IMDS instance-life-cycle), summed per group by the agent",
        *_heredoc("/etc/systemd/system/mlcdk-purchase-gauge.service", unit),
        "systemctl daemon-reload && systemctl enable --now mlcdk-purchase-gauge.service",
    ]


def efa_check() -> list[str]:
    """Fail the bootstrap loudly (and visibly in the console log) when the EFA provider is missing."""
    return [
        "# EFA: the libfabric efa provider must be visible, or collectives fall back to TCP",
        "FI_INFO=$(command -v fi_info || echo /opt/amazon/efa/bin/fi_info)",
        'if ! "$FI_INFO" -p efa -t FI_EP_RDM >/dev/null 2>&1; then echo "mlcdk: EFA provider not found (fi_info -p efa)" >&2; exit 1; fi',
        'echo "mlcdk: EFA devices: $("$FI_INFO" -p efa -t FI_EP_RDM | grep -c "domain:")"',
    ]


def efa_host_setup(devices: int) -> list[str]:
    """Batch nodes: install the EFA kernel driver when the AMI lacks it, then require one
    /dev/infiniband/uverbsN per EFA interface (the job definition maps exactly those into the container).

    The installer (EFA user guide, "Get started with EFA"; ``--minimal``: the kernel module and rdma-core only, since
    the job's container brings libfabric and NCCL or the Neuron runtime) is the pinned version of
    data/node_software.json, unpacked only when its SHA-256 matches the published one."""
    installer = node_software.software().efa_installer
    return [
        f"# EFA: {devices} uverbs devices for the job's container (installer {installer.version}, SHA-256 checked)",
        "if ! ls /dev/infiniband/uverbs0 >/dev/null 2>&1; then",
        "  EFA_DIR=$(mktemp -d)",
        f'  curl -fsSL -o "$EFA_DIR/efa.tar.gz" {installer.url}',
        f'  echo "{installer.sha256}  $EFA_DIR/efa.tar.gz" | sha256sum -c - '
        '|| { echo "mlcdk: the EFA installer does not match its published SHA-256" >&2; exit 1; }',
        '  tar -xzf "$EFA_DIR/efa.tar.gz" -C "$EFA_DIR"',
        '  (cd "$EFA_DIR/aws-efa-installer" && ./efa_installer.sh -y --minimal)',
        "fi",
        f'if [ "$(ls /dev/infiniband/ 2>/dev/null | grep -c "^uverbs")" -lt {devices} ]; then '
        f'echo "mlcdk: expected {devices} EFA devices in /dev/infiniband" >&2; exit 1; fi',
    ]


#: ECS container agent settings of a Batch node (ECS developer guide, "Amazon ECS container agent configuration"
#: and "IAM roles for tasks"; the agent's README lists the same variables): awsvpc tasks (multi-node jobs) cannot
#: reach instance metadata, so never the instance role; tasks get their job role through the agent's credentials
#: endpoint in bridge and host mode (single-node jobs run in host mode: Batch user guide, "Networking modes for AWS
#: Batch jobs"), set explicitly rather than left to the AMI's defaults.
ECS_SECURITY_SETTINGS = ("ECS_AWSVPC_BLOCK_IMDS=true", "ECS_ENABLE_TASK_IAM_ROLE=true",
                         "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true")


def ecs_settings(stop_timeout_s: int) -> list[str]:
    """Batch nodes: how long ECS waits after SIGTERM before it kills a job's container (ECS_CONTAINER_STOP_TIMEOUT:
    the job's time to checkpoint when it is cancelled or its node is taken away), and ECS_SECURITY_SETTINGS."""
    return ["# ECS: time between SIGTERM and SIGKILL for a stopping job (checkpoint window)",
            "mkdir -p /etc/ecs",
            f"echo ECS_CONTAINER_STOP_TIMEOUT={stop_timeout_s}s >> /etc/ecs/ecs.config",
            "# ECS: job containers never reach the instance role; their job role is their identity",
            *[f"echo {setting} >> /etc/ecs/ecs.config" for setting in ECS_SECURITY_SETTINGS]]


def guard_bootstrap() -> list[str]:
    """Batch nodes: if any later bootstrap step fails (the EFA devices, the shared file system's mount...), the node
    never registers with ECS and shuts down, so that Batch replaces it rather than sending it a job.

    The ECS-optimized AMIs order ``ecs.service`` ``After=cloud-final.service`` (aws/amazon-ecs-agent,
    packaging/amazon-linux-ami-integrated/ecs.service), the cloud-init stage that runs this script, but ``After=``
    is ordering only: the agent starts after a failed script too. So the EXIT trap masks the agent's unit and
    replaces its queued start with a stop before it can run, then powers off; the launch template's
    InstanceInitiatedShutdownBehavior "terminate" makes that a termination (mlcdk.constructs.batch_network)."""
    return [
        "# Guard: a failed bootstrap never joins ECS; the node shuts down and Batch replaces it",
        "mlcdk_bootstrap_failed() {",
        '  echo "mlcdk: bootstrap failed (exit $1): not registering with ECS; shutting down so that Batch replaces '
        'this node" >&2',
        "  systemctl mask ecs.service || true",
        "  systemctl stop --no-block ecs.service || true",
        "  shutdown -h now",
        "}",
        "trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then mlcdk_bootstrap_failed \"$rc\"; fi' EXIT",
    ]


#: Drop traffic from bridge-mode containers (docker0 and other docker bridges) to the instance metadata service, so
#: tasks cannot read the node role's credentials: the rule the ECS knowledge center gives for bridge networking
#: ("How can I prevent containers from accessing Amazon EC2 instance metadata in Amazon ECS?"), in Docker's
#: DOCKER-USER chain, re-applied whenever Docker starts (a systemd drop-in) and applied now if Docker runs.
IMDS_BLOCK = "iptables -I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP"
IMDS_BLOCK_CHECK = "iptables -C DOCKER-USER -i docker+ -d 169.254.169.254/32 -j DROP"


def block_container_imds() -> list[str]:
    """Bridge-mode containers cannot reach IMDS (the node role); the node itself and host-network processes can."""
    apply = f"{IMDS_BLOCK_CHECK} 2>/dev/null || {IMDS_BLOCK}"
    return [
        "# Containers: no route to the instance metadata service (the node role stays the node's)",
        *_heredoc("/etc/systemd/system/docker.service.d/mlcdk-block-imds.conf",
                  f"[Service]\nExecStartPost=/bin/sh -c '{apply}'"),
        "systemctl daemon-reload",
        f"if systemctl is-active --quiet docker; then {apply}; fi",
    ]


def ecs_node(cluster_name: str, *, spot: bool, warm_pool: bool, cache_path: str) -> list[str]:
    """An InferenceFleet node of the ECS engine: join the cluster (ECS_CLUSTER), drain on a spot interruption
    notice (ECS_ENABLE_SPOT_INSTANCE_DRAINING), wait in a warm pool without registering (ECS_WARM_POOLS_CHECK),
    keep containers away from IMDS, and create the model cache. ECS container agent configuration, ECS developer
    guide ("Amazon ECS container agent configuration", "Configuring pre-initialized instances")."""
    lines = ["# ECS: this node runs the fleet's model servers", "mkdir -p /etc/ecs",
             f"echo ECS_CLUSTER={cluster_name} >> /etc/ecs/ecs.config"]
    if spot:
        lines.append("echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config")
    if warm_pool:
        lines.append("echo ECS_WARM_POOLS_CHECK=true >> /etc/ecs/ecs.config")
    return [*lines, *block_container_imds(), f"mkdir -p {shlex.quote(cache_path)}"]


def mount_data_volume(mount_point: str) -> list[str]:
    """Format (first boot only) and mount the EBS data volume: the unmounted, unpartitioned EBS disk."""
    target = shlex.quote(mount_point)
    return [
        "# Data volume: the EBS NVMe disk that is neither the root disk nor mounted",
        "DATA_DEV=$(lsblk -dpno NAME,MODEL,TYPE | awk '/Elastic Block Store/ && $NF==\"disk\" {print $1}' | "
        "while read -r dev; do [ -z \"$(lsblk -no MOUNTPOINT \"$dev\" | tr -d '[:space:]')\" ] && "
        "[ \"$(lsblk -no TYPE \"$dev\" | grep -c part)\" = 0 ] && echo \"$dev\"; done | head -n1)",
        'if [ -z "$DATA_DEV" ]; then echo "mlcdk: data volume not found" >&2; exit 1; fi',
        'blkid "$DATA_DEV" >/dev/null || mkfs.xfs -q "$DATA_DEV"',
        f"mkdir -p {target}",
        f'grep -q " {mount_point} " /etc/fstab || echo "UUID=$(blkid -s UUID -o value "$DATA_DEV") {mount_point} xfs defaults,nofail 0 2" >> /etc/fstab',
        f"mount {target}",
    ]


#: Lustre client packages per OS (FSx for Lustre user guide, "Installing the Lustre client"): Amazon Linux 2023
#: (the ECS-optimized AMIs of the Batch engine) has it in its own repository; Amazon Linux 2 in the "lustre"
#: extra; Ubuntu (the DLAMIs of the nodes engine) in FSx's apt repository, one module package per kernel.
FSX_UBUNTU_KEY = "https://fsx-lustre-client-repo-public-keys.s3.amazonaws.com/fsx-ubuntu-public-key.asc"
FSX_UBUNTU_REPO = "https://fsx-lustre-client-repo.s3.amazonaws.com/ubuntu"
#: Mount options (FSx for Lustre user guide, "Mounting the file system" and "Mounting automatically"): relatime
#: and flock for the mount; _netdev in fstab, so a reboot waits for the network. No
#: ``x-systemd.requires=network.service``: Amazon Linux 2023 and Ubuntu run systemd-networkd and have no
#: network.service, so that dependency fails the mount; ``_netdev`` already orders it after
#: network-online.target (systemd.mount(5), "Automatic dependencies").
LUSTRE_MOUNT_OPTIONS = "relatime,flock"
LUSTRE_FSTAB_OPTIONS = "defaults,relatime,flock,_netdev,x-systemd.automount"


def lustre_client() -> list[str]:
    """Install the Lustre client unless the AMI has it (a DLAMI may ship it): the package depends on the OS."""
    return [
        "if ! modinfo lustre >/dev/null 2>&1; then",
        "  . /etc/os-release",
        '  case "${ID}:${VERSION_ID:-}" in',
        "    amzn:2023*) dnf install -y lustre-client ;;",
        "    amzn:2) amazon-linux-extras install -y lustre ;;",
        f"    ubuntu:*) curl -fsSL {FSX_UBUNTU_KEY} | gpg --dearmor --yes -o /usr/share/keyrings/fsx-ubuntu-public-key.gpg",
        f'      echo "deb [signed-by=/usr/share/keyrings/fsx-ubuntu-public-key.gpg] {FSX_UBUNTU_REPO} '
        '${VERSION_CODENAME} main" > /etc/apt/sources.list.d/fsxlustreclientrepo.list',
        '      apt-get -o DPkg::Lock::Timeout=300 update && apt-get -o DPkg::Lock::Timeout=300 install -y '
        '"lustre-client-modules-$(uname -r)" ;;',
        '    *) echo "mlcdk: no Lustre client recipe for ${ID} ${VERSION_ID:-}" >&2; exit 1 ;;',
        "  esac",
        "fi",
    ]


def mount_lustre(dns_name: str, mount_name: str, mount_point: str, *, neuron_cache: str | None = None) -> list[str]:
    """Install the client, mount the file system at ``mount_point`` now and at every boot (fstab, _netdev), and
    with ``neuron_cache`` point NEURON_COMPILE_CACHE_URL there for every process (/etc/environment)."""
    target = shlex.quote(mount_point)
    source = f"{dns_name}@tcp:/{mount_name}"
    lines = [
        f"# Shared storage: FSx for Lustre at {mount_point}",
        *lustre_client(),
        f"mkdir -p {target}",
        f'grep -q " {mount_point} lustre " /etc/fstab || echo "{source} {mount_point} lustre {LUSTRE_FSTAB_OPTIONS} 0 0" >> /etc/fstab',
        f"mountpoint -q {target} || mount -t lustre -o {LUSTRE_MOUNT_OPTIONS} {source} {target}",
        f'mountpoint -q {target} || {{ echo "mlcdk: {mount_point} is not mounted" >&2; exit 1; }}',
        f"echo MLCDK_SHARED_STORAGE={mount_point} >> /etc/environment",
    ]
    if neuron_cache:
        lines += [f"mkdir -p {shlex.quote(neuron_cache)}", f"echo NEURON_COMPILE_CACHE_URL={neuron_cache} >> /etc/environment"]
    return lines


@dataclass(frozen=True)
class NodeBoot:
    """What a node's bootstrap does besides the metrics every node publishes; ``extra`` runs last.

    ``cluster`` adds the cluster dimension to every metric (TrainingCluster). On the Batch engine,
    ``batch_efa_devices`` replaces the libfabric check with the host driver set-up, and
    ``batch_stop_timeout_s`` sets the ECS stop timeout and security settings and guards the bootstrap (a node that
    fails it never registers with ECS and shuts down). ``shared_storage`` (from :func:`mount_lustre`) mounts the
    shared file system after the data volume and before the user's commands. ``serving`` (from :func:`ecs_node`)
    joins an InferenceFleet's ECS cluster after the volumes, and ``prometheus`` makes the agent scrape its server.
    """

    efa: bool
    data_mount_point: str | None
    extra: Sequence[str]
    cluster: str | None = None
    batch_efa_devices: int | None = None
    batch_stop_timeout_s: int | None = None
    shared_storage: Sequence[str] = ()
    prometheus: metrics.PrometheusScrape | None = None
    serving: Sequence[str] = ()


def bootstrap(spec: InstanceSpec, boot: NodeBoot) -> list[str]:
    """All bootstrap commands for a node, in order (see NodeBoot)."""
    efa, cluster, batch_efa_devices = boot.efa, boot.cluster, boot.batch_efa_devices
    lines = ["set -euo pipefail", "exec > >(tee -a /var/log/mlcdk-bootstrap.log) 2>&1"]
    if boot.batch_stop_timeout_s is not None:
        lines += guard_bootstrap() + ecs_settings(boot.batch_stop_timeout_s)
    lines += cloudwatch_agent(spec, cluster, boot.prometheus)
    lines += purchase_gauge(cluster)
    if spec.accelerator is not None and spec.accelerator.kind == "neuron":
        lines += neuron_metrics(spec, cluster)
    if efa and batch_efa_devices:
        lines += efa_host_setup(batch_efa_devices)
    elif efa:
        lines += efa_check()
    if boot.data_mount_point:
        lines += mount_data_volume(boot.data_mount_point)
    lines += boot.shared_storage
    lines += boot.serving
    if boot.extra:
        lines += ["# user commands", *boot.extra]
    return lines
