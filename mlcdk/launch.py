"""``python -m mlcdk.launch [--dry-run] [--nproc-per-node N] [--master-port P] [--rendezvous-timeout S] --
COMMAND...``: exec torchrun
with a static rendezvous (--master-addr/--master-port/--node-rank) from the scheduler's node facts. COMMAND
is a whole command (torchrun --no-python), e.g. ``python train.py``.

Standard library only: it runs in any training image, also as this lone file from MLCDK_LAUNCHER.
Reads AWS Batch's AWS_BATCH_JOB_NODE_INDEX, _NUM_NODES, _MAIN_NODE_INDEX and _MAIN_NODE_PRIVATE_IPV4_ADDRESS
(absent on the main node; AWS Batch User Guide, "Reserved runtime environment variables",
https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html), else Slurm's SLURM_NODEID, SLURM_NNODES,
SLURM_JOB_NODELIST (https://slurm.schedmd.com/sbatch.html, "OUTPUT ENVIRONMENT VARIABLES"), else one node;
and from mlcdk's job definition MLCDK_NPROC_PER_NODE, MLCDK_MASTER_PORT, MLCDK_EFA, MLCDK_EFA_DEVICE_RDMA,
MLCDK_ACCELERATOR (the catalog's kind: gpu, neuron, other or none), MLCDK_RENDEZVOUS_TIMEOUT, and
MLCDK_SHARED_STORAGE (a mount point the job needs). "AWS_SAMPLES' p6 Batch template" below is
1.architectures/3.aws-batch/aws-batch-distributed-training-p6.yaml in aws-samples/awsome-distributed-training;
"NEURON_SAMPLES" are torch-neuronx/training/aws-batch/all-reduce/docker/allreduce.sh and
llama2/docker/llama_batch_training.sh in aws-neuron/aws-neuron-samples.

The environment is checked as strictly as the constructs check their parameters, and nothing in it reaches
torchrun unchecked: every number is a plain decimal of at most 18 digits within its bounds (MAX_NODES,
MAX_NPROC_PER_NODE, ports 1-65535); the main node's address is a unicast IPv4 address or a host name (never
0.0.0.0, and never loopback on a worker, which would then wait for itself, unless MLCDK_SAME_HOST=1 says that
every node runs on this one machine, as in a local test); nothing can begin with '-' where
torchrun reads an option (the host, the COMMAND's first word); the Slurm host list is read in one linear pass
(no regular expression that can backtrack). Every error shows a bounded part of the value.

With MLCDK_WORKDIR_URI (set by ``mlcdk submit --workdir``) it first fetches that pack from S3 with the job role's
credentials, checks its SHA-256 and unpacks it into the working directory, on every node and every attempt.

Exit codes: 0 the command's own (the launcher execs torchrun, whose exit code becomes the job's); 2 a bad
environment or command line, printed as one line starting "mlcdk.launch: error: "; 3 shared storage is
configured (MLCDK_SHARED_STORAGE) but that path is not a mount point, so checkpoints would land on the
container's own disk and be lost (one line too); 4 the workdir could not be fetched, verified or unpacked;
127 neither torchrun nor python could be run.
"""
from __future__ import annotations

import argparse
import base64
import functools
import ipaddress
import json
import os
import re  # fullmatch only, on patterns whose repeats are anchored by a fixed character: linear time
import shutil
import socket
import sys
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

LAUNCHER_ENV = "MLCDK_LAUNCHER"
# Decodes the launcher from MLCDK_LAUNCHER and runs it as __main__; `python3 -c` leaves sys.argv[1:] as is.
BOOT = ("import os,zlib,base64;exec(compile(zlib.decompress(base64.b64decode(os.environ['MLCDK_LAUNCHER'])),"
        "'mlcdk/launch.py','exec'),{'__name__':'__main__'})")
DEFAULT_PORT = 29500  # torchrun's own default --master-port
MAIN_ADDRESS = "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"
#: Nodes in one job: ten times AWS Batch's default of 1,000 nodes per multi-node job (Batch User Guide, "Node
#: groups"; the limit can be raised), for Slurm too. A count beyond it is a broken environment, not a cluster.
MAX_NODES = 10_000
#: Processes per node: above the vCPU count of every catalog type (tests/test_launch.py checks it).
MAX_NPROC_PER_NODE = 1024
#: Digits in any number the launcher reads: int() never meets Python's integer-string limit (4,300 digits).
MAX_DIGITS = 18
#: How much of a bad value an error shows.
SHOWN = 60
_DIGIT_CHARS = frozenset("0123456789")
#: Characters of a host name in a Slurm host list (RFC 1123 labels; '_' as cluster names use it).
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class LaunchError(Exception):
    """A bad environment or command line; main() prints it as one line and exits ``code``."""

    code = 2


class NotMounted(LaunchError):
    """MLCDK_SHARED_STORAGE names a path that is not a mount point: exit 3."""

    code = 3


@dataclass(frozen=True)
class Plan:
    """What to exec: the torchrun command line, and the variables the launcher adds to the environment."""

    command: list[str]
    env: dict[str, str]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own would print the usage too
        raise LaunchError(message)


def _split(args: Sequence[str]) -> tuple[list[str], list[str]]:
    args = list(args)
    return (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])


def shown(value: str) -> str:
    """``value`` for an error message: its repr, cut to SHOWN characters with the full length named."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}... ({len(value):,} characters)"


def _number(name: str, value: str | None, low: int, high: int, why: str = "") -> int:
    """A plain decimal from ``low`` to ``high``; its length is checked before int() reads it."""
    if value is None:
        raise LaunchError(f"{name} is not set{why}")
    if not 0 < len(value) <= MAX_DIGITS or not set(value) <= _DIGIT_CHARS or not low <= int(value) <= high:
        raise LaunchError(f"{name}={shown(value)} is not an integer from {low} to {high}{why}")
    return int(value)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    if environ.get(name, "0") not in ("0", "1", ""):
        raise LaunchError(f"{name}={shown(environ[name])} is not 0 or 1")
    return environ.get(name) == "1"


def host_address() -> str:
    """This node's IPv4 address, for the Batch main node, which is not told its own.

    The hostname through the resolver (/etc/hosts, which ECS writes), as `hostname -i` in AWS_SAMPLES' p6
    Batch template; if loopback, the source address of the route out from a UDP connect(), which sends no
    packet (192.0.2.1 is TEST-NET-1, RFC 5737); last 127.0.0.1.
    """
    try:
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _bracket_first(name: str, nodelist: str, inner: str) -> str:
    """The first number of a Slurm range group's inside (``01-04,07`` -> ``01``), every item checked."""
    for item in inner.split(","):
        low, _, high = item.partition("-")
        for number in (low, high) if "-" in item else (low,):
            if not 0 < len(number) <= MAX_DIGITS or not set(number) <= _DIGIT_CHARS:
                raise LaunchError(f"{name}={shown(nodelist)} is not a Slurm hostlist: [{shown(inner)}] holds "
                                  f"{shown(item)}, not a number or a range a-b")
        if high and int(high) < int(low):
            raise LaunchError(f"{name}={shown(nodelist)} is not a Slurm hostlist: the range {item} runs backwards")
    return inner.split(",", 1)[0].partition("-")[0]


def first_host(nodelist: str, name: str = "SLURM_JOB_NODELIST") -> str:
    """The first host of a Slurm hostlist: ``node[01-04,07]`` -> node01, ``a-[1-3],b5`` -> a-1.

    One pass over the text (no regular expression, so no backtracking on any input); every entry is checked.
    """
    entries: list[str] = []
    pieces: list[str] = []
    index = 0
    while index < len(nodelist):
        char = nodelist[index]
        if char == "[":
            close = nodelist.find("]", index + 1)
            if close < 0 or "[" in nodelist[index + 1:close]:
                raise LaunchError(f"{name}={shown(nodelist)} is not a Slurm hostlist: a '[' at {index} is not closed")
            pieces.append(_bracket_first(name, nodelist, nodelist[index + 1:close]))
            index = close + 1
            continue
        if char == ",":
            entries.append("".join(pieces))
            pieces = []
        elif char in _HOST_CHARS:
            pieces.append(char)
        else:
            raise LaunchError(f"{name}={shown(nodelist)} is not a Slurm hostlist: {char!r} at {index}")
        index += 1
    entries.append("".join(pieces))
    if not all(entries):
        raise LaunchError(f"{name}={shown(nodelist)} is not a Slurm hostlist: it has an empty entry")
    return _host(name, entries[0])


def _host(name: str, host: str) -> str:
    """``host`` when it is a host name of RFC 1123 labels (or an IPv4 address): nothing torchrun reads as an option."""
    labels = host.split(".")
    if len(host) > 253 or not all(0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-" for label in labels):
        raise LaunchError(f"{name}: its first host {shown(host)} is not a host name (labels of letters, digits and "
                          "'-', none beginning or ending with '-')")
    return host


def main_address(name: str, value: str, *, worker: bool) -> str:
    """The main node's address: a unicast IPv4 address (or host name), never 0.0.0.0, multicast, link-local or
    reserved, and on a worker never its own loopback (the worker would wait for itself)."""
    if value.lower() == "localhost" or value.lower().endswith(".localhost"):
        address = ipaddress.IPv4Address("127.0.0.1")
    elif value and set(value) <= _DIGIT_CHARS | {"."}:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise LaunchError(f"{name}={shown(value)} is not an IPv4 address") from None
    else:
        return value
    if address.is_unspecified or address.is_multicast or address.is_link_local or address.is_reserved:
        raise LaunchError(f"{name}={shown(value)} is not a unicast address of a node")
    if worker and address.is_loopback:
        raise LaunchError(f"{name}={shown(value)} is loopback: a worker node must reach the main node at its own "
                          "address")
    return value


def _nodes(environ: Mapping[str, str], own_address: Callable[[], str]) -> tuple[int, int, str]:
    """(node count, node rank, master address)."""
    if "AWS_BATCH_JOB_NODE_INDEX" in environ or "AWS_BATCH_JOB_NUM_NODES" in environ:
        count = _number("AWS_BATCH_JOB_NUM_NODES", environ.get("AWS_BATCH_JOB_NUM_NODES"), 1, MAX_NODES)
        of = f" (AWS_BATCH_JOB_NUM_NODES={count})"
        index = _number("AWS_BATCH_JOB_NODE_INDEX", environ.get("AWS_BATCH_JOB_NODE_INDEX"), 0, count - 1, of)
        main = _number("AWS_BATCH_JOB_MAIN_NODE_INDEX", environ.get("AWS_BATCH_JOB_MAIN_NODE_INDEX", "0"),
                       0, count - 1, of)
        address = environ.get(MAIN_ADDRESS, "")
        if not address and index != main:
            raise LaunchError(f"{MAIN_ADDRESS} is not set on worker node AWS_BATCH_JOB_NODE_INDEX={index}"
                              f" (the main node is {main})")
        if address and not set(address) <= _DIGIT_CHARS | {"."}:
            raise LaunchError(f"{MAIN_ADDRESS}={shown(address)} is not an IPv4 address")
        worker = index != main and not _flag(environ, "MLCDK_SAME_HOST")
        address = main_address(MAIN_ADDRESS, address, worker=worker) if address else own_address()
        # torchrun's static rendezvous hosts its store on node rank 0, so count ranks from the main node:
        # the rank is the Batch index whenever the main node is 0, as in mlcdk's job definition.
        return count, (index - main) % count, address
    if any(name in environ for name in ("SLURM_NODEID", "SLURM_NNODES", "SLURM_JOB_NODELIST")):
        count = _number("SLURM_NNODES", environ.get("SLURM_NNODES"), 1, MAX_NODES)
        rank = _number("SLURM_NODEID", environ.get("SLURM_NODEID"), 0, count - 1, f" (SLURM_NNODES={count})")
        if "SLURM_JOB_NODELIST" not in environ:
            raise LaunchError("SLURM_JOB_NODELIST is not set")
        host = first_host(environ["SLURM_JOB_NODELIST"])
        worker = rank != 0 and not _flag(environ, "MLCDK_SAME_HOST")
        return count, rank, main_address("the first host of SLURM_JOB_NODELIST", host, worker=worker)
    return 1, 0, "127.0.0.1"


def interfaces() -> list[str]:
    """The names of this network namespace's interfaces."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        return []


def check_storage(environ: Mapping[str, str], is_mount: Callable[[str], bool] = os.path.ismount) -> None:
    """Refuse to run (NotMounted, exit 3) when MLCDK_SHARED_STORAGE is set and that path is not a mount point:
    the node's file-system mount failed, or the job lacks its host volume."""
    path = environ.get("MLCDK_SHARED_STORAGE", "")
    if not path:
        return
    if not os.path.isabs(path):
        raise LaunchError(f"MLCDK_SHARED_STORAGE={shown(path)} is not an absolute path")
    if not is_mount(path):
        raise NotMounted(f"shared storage MLCDK_SHARED_STORAGE={shown(path)} is not a mount point: the node's mount "
                         "failed or the job lacks its volume; refusing to write checkpoints to the container's disk")


def _collectives(environ: Mapping[str, str], master: str, port: int,
                 names: Callable[[], Sequence[str]]) -> dict[str, str]:
    """Libfabric, NCCL and Neuron settings; a variable already in the environment is left to the user."""
    env = {}
    if _flag(environ, "MLCDK_EFA"):
        # As in AWS_SAMPLES' p6 Batch template and aws-neuron-samples torch-neuronx/training/aws-batch/
        # all-reduce/docker/allreduce.sh; meanings in libfabric's fi_efa(7) man page.
        env["FI_PROVIDER"] = "efa"
        env["FI_EFA_FORK_SAFE"] = "1"  # data loaders fork after libfabric registered memory
        if _flag(environ, "MLCDK_EFA_DEVICE_RDMA"):  # the job definition's catalog says RDMA read works
            env["FI_EFA_USE_DEVICE_RDMA"] = "1"
    accelerator = environ.get("MLCDK_ACCELERATOR", "")
    if accelerator not in ("gpu", "neuron", "other", "none", "cpu", ""):
        raise LaunchError(f"MLCDK_ACCELERATOR={shown(accelerator)} is not gpu, neuron, other or none")
    if accelerator == "gpu":
        # NCCL's sockets skip interfaces whose names begin lo, docker or ecs (AWS_SAMPLES' p6 Batch template; "^"
        # excludes by prefix: NCCL docs, "Environment Variables"). A Batch multi-node job's container is an awsvpc
        # task with lo, eth0 (the task ENI) and ecs-eth0 (the veth to the ECS agent; amazon-ecs-agent
        # agent/ecscni/types_linux.go): NCCL uses eth0. On a host network it uses the host's own interfaces.
        env["NCCL_SOCKET_IFNAME"] = "^lo,docker,ecs"
    if accelerator == "neuron" and "eth0" in names():
        # The Neuron collectives' sockets on the task ENI, as both NEURON_SAMPLES set; a host without an eth0
        # (persistent nodes name theirs ens5...) keeps the collectives' own choice.
        env["CCOM_SOCKET_IFNAME"] = "eth0"
    if accelerator == "neuron" and "NEURON_RT_ROOT_COMM_ID" not in environ:
        # The Neuron runtime's root communicator, <main node>:<port>, on a port of its own beside torchrun's
        # (Neuron runtime "NEURON_RT_ROOT_COMM_ID", https://awsdocs-neuron.readthedocs-hosted.com/en/latest/
        # neuron-runtime/nrt-configurable-parameters.html; aws-neuron-samples torch-neuronx/training/aws-batch).
        if port == 65535:
            raise LaunchError(f"master port {port} leaves no port for NEURON_RT_ROOT_COMM_ID (port + 1)")
        env["NEURON_RT_ROOT_COMM_ID"] = f"{master}:{port + 1}"
    return {name: value for name, value in env.items() if name not in environ}


def plan(environ: Mapping[str, str], args: Sequence[str], *, own_address: Callable[[], str] = host_address,
         names: Callable[[], Sequence[str]] = interfaces) -> Plan:
    """The torchrun command and the variables to add, from the environment and the launcher's arguments."""
    options, command = _split(args)
    parser = _Parser(prog="python -m mlcdk.launch", allow_abbrev=False,
                     usage="%(prog)s [--dry-run] [--nproc-per-node N] [--master-port P] [--rendezvous-timeout S] "
                           "-- COMMAND...")
    parser.add_argument("--dry-run", action="store_true", help="print the command and variables as JSON")
    parser.add_argument("--nproc-per-node", metavar="N", help="processes per node (MLCDK_NPROC_PER_NODE, 1)")
    parser.add_argument("--master-port", metavar="P", help=f"rendezvous port (MLCDK_MASTER_PORT, {DEFAULT_PORT})")
    parser.add_argument("--rendezvous-timeout", metavar="S",
                        help="seconds torchrun waits for every node (MLCDK_RENDEZVOUS_TIMEOUT; torchrun's 600)")
    parsed = parser.parse_args(options)
    if not command:
        raise LaunchError("missing COMMAND after '--'")
    if command[0].startswith("-"):
        raise LaunchError(f"COMMAND begins with {shown(command[0])}, which torchrun would read as its own option; "
                          "give the program first, e.g. -- python train.py")

    def setting(flag: str, value: str | None, name: str, default: int, high: int) -> int:
        if value is not None:
            return _number(flag, value, 1, high)
        return _number(name, environ.get(name, str(default)), 1, high)

    nproc = setting("--nproc-per-node", parsed.nproc_per_node, "MLCDK_NPROC_PER_NODE", 1, MAX_NPROC_PER_NODE)
    port = setting("--master-port", parsed.master_port, "MLCDK_MASTER_PORT", DEFAULT_PORT, 65535)
    given = parsed.rendezvous_timeout is not None or "MLCDK_RENDEZVOUS_TIMEOUT" in environ
    wait = ["--rdzv-conf", "timeout=%d" % setting("--rendezvous-timeout", parsed.rendezvous_timeout,
                                                   "MLCDK_RENDEZVOUS_TIMEOUT", 600, 86400)] if given else []
    nnodes, rank, master = _nodes(environ, own_address)
    env = _collectives(environ, master, port, names)
    # torchrun on PATH, else the module it runs (https://docs.pytorch.org/docs/stable/elastic/run.html).
    torchrun = (["torchrun"] if shutil.which("torchrun", path=environ.get("PATH", os.defpath))
                else [sys.executable, "-m", "torch.distributed.run"])
    return Plan([*torchrun, "--nnodes", str(nnodes), "--node-rank", str(rank), "--nproc-per-node", str(nproc),
                 "--master-addr", master, "--master-port", str(port), *wait, "--no-python", *command], env)


# --workdir (exit 4): fetch the pack `mlcdk submit --workdir` uploaded, check its SHA-256, unpack it into the cwd.
WORKDIR_ENV = ("MLCDK_WORKDIR_URI", "MLCDK_WORKDIR_SHA256", "MLCDK_WORKDIR_REGION")
WORKDIR_MAX_BYTES = 100 * 1024 * 1024  # the pack's files before compression (mlcdk.aws.jobs.workdir's limit too)
# Task role credentials: ECS Developer Guide, "Task IAM role"; plain HTTP only to the hosts the AWS SDKs allow.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]")
FETCH_DELAYS = (1, 2, 4, 8, None)  # seconds before each retry of throttling, 5xx and network errors


class WorkdirError(Exception):
    """main() prints it as one line and exits 4."""


def _http(request, what: str) -> bytes:
    import time
    import urllib.error
    import urllib.request
    for delay in FETCH_DELAYS:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = response.read(WORKDIR_MAX_BYTES + 1)
            if len(body) > WORKDIR_MAX_BYTES:
                raise WorkdirError(f"{what} is over {WORKDIR_MAX_BYTES} bytes")
            return body
        except urllib.error.HTTPError as error:
            if delay is None or (error.code < 500 and error.code != 429):
                raise WorkdirError(f"{what}: HTTP {error.code} {error.reason}") from None
        except OSError as error:
            if delay is None:
                raise WorkdirError(f"{what}: {getattr(error, 'reason', error)}") from None
        time.sleep(delay)


def _credentials(environ: Mapping[str, str]) -> tuple[str, str, str | None]:
    """The AWS SDKs' order: the environment, then the container's role (RELATIVE_URI, or FULL_URI with a token)."""
    import urllib.parse
    import urllib.request
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], environ.get("AWS_SESSION_TOKEN")
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    url = f"http://{LOCAL_HOSTS[3]}{relative}" if relative else environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.netloc.rsplit(":", 1)[0] in LOCAL_HOSTS):
        raise WorkdirError(f"no credentials: no job role (AWS_CONTAINER_CREDENTIALS_*_URI={url[:100]!r})")
    request, token = urllib.request.Request(url), environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        with open(environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], encoding="utf-8") as file:
            token = file.read().strip()
    if token:
        request.add_header("Authorization", token)
    try:
        found = json.loads(_http(request, "the container credentials endpoint"))
        return found["AccessKeyId"], found["SecretAccessKey"], found.get("Token")
    except (ValueError, KeyError, TypeError):
        raise WorkdirError("the container credentials endpoint answered no credentials") from None


def _signed_get(url: str, region: str, credentials: tuple[str, str, str | None]):
    """GET ``url`` signed with AWS Signature Version 4 for S3 (S3 API reference, "Signature Calculations for the
    Authorization Header"), the empty payload's SHA-256 in x-amz-content-sha256."""
    import datetime
    import hashlib
    import hmac
    import urllib.parse
    import urllib.request
    key, secret, token = credentials
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    headers = {"host": parts.netloc, "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(), "x-amz-date": stamp}
    if token:
        headers["x-amz-security-token"] = token
    names = ";".join(sorted(headers))
    canonical = "\n".join(["GET", parts.path, "", *(f"{n}:{headers[n]}" for n in sorted(headers)), "", names,
                           headers["x-amz-content-sha256"]])
    scope = f"{day}/{region}/s3/aws4_request"
    signing = ("AWS4" + secret).encode()
    for part in scope.split("/"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    text = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={names}, "
                                f"Signature={hmac.new(signing, text.encode(), hashlib.sha256).hexdigest()}")
    del headers["host"]
    return urllib.request.Request(url, headers=headers)


def _object_url(environ: Mapping[str, str], bucket: str, key: str, region: str) -> str:
    """Path-style under the SDKs' AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else S3's regional endpoint
    (virtual-hosted; path-style for a bucket name with dots, which its TLS certificate does not cover)."""
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    host = f"s3.{region}.amazonaws.com" + (".cn" if region.startswith("cn-") else "")
    return f"https://{host}/{bucket}/{key}" if "." in bucket else f"https://{bucket}.{host}/{key}"


def _unpack(data: bytes, destination: str) -> int:
    """Regular files and folders only, inside ``destination``; returns the number of files."""
    import io
    import posixpath
    import tarfile
    count = total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            name = posixpath.normpath(member.name)
            total += member.size
            if name == ".." or name.startswith(("/", "../")) or not (member.isfile() or member.isdir()):
                raise WorkdirError(f"the pack holds {member.name[:200]!r}, not a file or folder inside the workdir")
            if total > WORKDIR_MAX_BYTES:
                raise WorkdirError(f"the pack unpacks to over {WORKDIR_MAX_BYTES} bytes")
            path = os.path.join(destination, *name.split("/"))
            if member.isdir():
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.islink(path):
                os.unlink(path)
            with archive.extractfile(member) as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target)
            os.chmod(path, 0o755 if member.mode & 0o111 else 0o644)
            count += 1
    return count


def fetch_workdir(environ: Mapping[str, str], destination: str) -> str | None:
    """Fetch, check and unpack the pack MLCDK_WORKDIR_URI names; None without one. Raises WorkdirError."""
    import hashlib
    import tarfile
    uri, digest, region = (environ.get(name, "") for name in WORKDIR_ENV)
    if not uri:
        return None
    found = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9_./-]{1,1024})", uri)
    if not (found and re.fullmatch(r"[0-9a-f]{64}", digest) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", region)):
        raise WorkdirError(f"{uri[:200]!r}, SHA-256 {digest[:80]!r}, region {region[:40]!r}: not an S3 URI, a digest "
                           "and a region")
    try:
        url = _object_url(environ, *found.groups(), region)
        data = _http(_signed_get(url, region, _credentials(environ)), uri)
    except WorkdirError as error:
        raise WorkdirError(f"cannot fetch {error}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise WorkdirError(f"{uri} does not have the SHA-256 {digest} it was uploaded with")
    try:
        return f"{uri}: {_unpack(data, destination)} file(s) into {destination}"
    except (OSError, EOFError, tarfile.TarError) as error:
        raise WorkdirError(f"cannot unpack {uri}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        result = plan(os.environ, argv)
        check_storage(os.environ)
    except LaunchError as error:
        print(f"mlcdk.launch: error: {one_line(str(error))}", file=sys.stderr)
        return error.code
    if "--dry-run" in _split(argv)[0]:
        print(json.dumps({"command": result.command, "env": result.env}))
        return 0
    try:
        fetched = fetch_workdir(os.environ, os.getcwd())
    except WorkdirError as error:
        print(f"mlcdk.launch: error: --workdir: {error}", file=sys.stderr)
        return 4
    if fetched:
        print(f"mlcdk.launch: workdir {fetched}", file=sys.stderr)
    sys.stdout.flush()
    try:
        os.execvpe(result.command[0], result.command, {**os.environ, **result.env})
    except OSError as error:  # no torchrun and no python to run torch.distributed.run
        print(f"mlcdk.launch: error: cannot run {result.command[0]}: {error.strerror}", file=sys.stderr)
        return 127


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` on one line (control characters escaped, as argparse may echo them) and at most ``limit``
    characters long."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message[:limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."


@functools.lru_cache(maxsize=1)
def encoded_source() -> str:
    """This module as code without its docstrings and comments (``ast.unparse``), zlib-compressed and
    base64-encoded, for the MLCDK_LAUNCHER variable: the job definition carries code, not prose. Computed once per
    process (44 ms; every Batch cluster of an app carries the same text)."""
    import ast

    with open(__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return base64.b64encode(zlib.compress(ast.unparse(tree).encode("utf-8"), 9)).decode("ascii")


def inline_command(args: Sequence[str]) -> list[str]:
    """A container command running this launcher from MLCDK_LAUNCHER, with ``args`` as its arguments."""
    return ["python3", "-c", BOOT, *args]


if __name__ == "__main__":
    sys.exit(main())
