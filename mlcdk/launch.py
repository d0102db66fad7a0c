"""``python -m mlcdk.launch [--dry-run] [--nproc-per-node N] [--master-port P] -- COMMAND...``: exec torchrun
with a static rendezvous (--master-addr/--master-port/--node-rank) from the scheduler's node facts. COMMAND
is a whole command (torchrun --no-python), e.g. ``python train.py``.

Standard library only: it runs in any training image, also as this lone file from MLCDK_LAUNCHER.
Reads AWS Batch's AWS_BATCH_JOB_NODE_INDEX, _NUM_NODES, _MAIN_NODE_INDEX and _MAIN_NODE_PRIVATE_IPV4_ADDRESS
(absent on the main node; AWS Batch User Guide, "Reserved runtime environment variables",
https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html), else Slurm's SLURM_NODEID, SLURM_NNODES,
SLURM_JOB_NODELIST (https://slurm.schedmd.com/sbatch.html, "OUTPUT ENVIRONMENT VARIABLES"), else one node;
and from mlcdk's job definition MLCDK_NPROC_PER_NODE, MLCDK_MASTER_PORT, MLCDK_EFA, MLCDK_EFA_DEVICE_RDMA,
MLCDK_ACCELERATOR (the catalog's kind: gpu, neuron, other or none). "AWS_SAMPLES' p6 Batch template" below
is 1.architectures/3.aws-batch/aws-batch-distributed-training-p6.yaml in aws-samples/awsome-distributed-training.

With MLCDK_WORKDIR_URI (set by ``mlcdk submit --workdir``) it first fetches that pack from S3 with the job role's
credentials, checks its SHA-256 and unpacks it into the working directory, on every node and every attempt.

Exit codes: the command's own (the launcher execs torchrun); 2 a bad environment or command line; 4 the workdir
could not be fetched, verified or unpacked; 127 no torchrun and no python to run it.
"""
from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import re
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


class LaunchError(Exception):
    """A bad environment or command line; main() prints it as one line and exits 2."""


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


def _number(name: str, value: str | None, low: int, high: int | None = None, why: str = "") -> int:
    if value is None:
        raise LaunchError(f"{name} is not set{why}")
    if not re.fullmatch(r"[0-9]+", value) or int(value) < low or (high is not None and int(value) > high):
        wanted = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise LaunchError(f"{name}={value!r} is not an integer {wanted}{why}")
    return int(value)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    if environ.get(name, "0") not in ("0", "1", ""):
        raise LaunchError(f"{name}={environ[name]!r} is not 0 or 1")
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


def first_host(nodelist: str) -> str:
    """The first host of a Slurm hostlist: ``node[01-04,07]`` -> node01, ``a-[1-3],b5`` -> a-1."""
    ranges = r"\[\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*\]"
    host = rf"(?:[^\[\],\s]+|{ranges})+"
    if not re.fullmatch(rf"{host}(?:,{host})*", nodelist):
        raise LaunchError(f"SLURM_JOB_NODELIST={nodelist!r} is not a Slurm hostlist")
    return re.sub(r"\[(\d+)[^\]]*\]", r"\1", re.match(host, nodelist).group())


def _nodes(environ: Mapping[str, str], own_address: Callable[[], str]) -> tuple[int, int, str]:
    """(node count, node rank, master address)."""
    if "AWS_BATCH_JOB_NODE_INDEX" in environ or "AWS_BATCH_JOB_NUM_NODES" in environ:
        count = _number("AWS_BATCH_JOB_NUM_NODES", environ.get("AWS_BATCH_JOB_NUM_NODES"), 1)
        of = f" (AWS_BATCH_JOB_NUM_NODES={count})"
        index = _number("AWS_BATCH_JOB_NODE_INDEX", environ.get("AWS_BATCH_JOB_NODE_INDEX"), 0, count - 1, of)
        main = _number("AWS_BATCH_JOB_MAIN_NODE_INDEX", environ.get("AWS_BATCH_JOB_MAIN_NODE_INDEX", "0"),
                       0, count - 1, of)
        address = environ.get(MAIN_ADDRESS, "")
        if not address and index != main:
            raise LaunchError(f"{MAIN_ADDRESS} is not set on worker node AWS_BATCH_JOB_NODE_INDEX={index}"
                              f" (the main node is {main})")
        try:
            address = str(ipaddress.IPv4Address(address)) if address else own_address()
        except ValueError:
            raise LaunchError(f"{MAIN_ADDRESS}={address!r} is not an IPv4 address") from None
        # torchrun's static rendezvous hosts its store on node rank 0, so count ranks from the main node:
        # the rank is the Batch index whenever the main node is 0, as in mlcdk's job definition.
        return count, (index - main) % count, address
    if any(name in environ for name in ("SLURM_NODEID", "SLURM_NNODES", "SLURM_JOB_NODELIST")):
        count = _number("SLURM_NNODES", environ.get("SLURM_NNODES"), 1)
        rank = _number("SLURM_NODEID", environ.get("SLURM_NODEID"), 0, count - 1, f" (SLURM_NNODES={count})")
        if "SLURM_JOB_NODELIST" not in environ:
            raise LaunchError("SLURM_JOB_NODELIST is not set")
        return count, rank, first_host(environ["SLURM_JOB_NODELIST"])
    return 1, 0, "127.0.0.1"


def _collectives(environ: Mapping[str, str], master: str, port: int) -> dict[str, str]:
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
    if accelerator == "gpu":
        # NCCL's sockets skip loopback, Docker's bridge and ECS's interface: AWS_SAMPLES' p6 Batch template.
        env["NCCL_SOCKET_IFNAME"] = "^lo,docker,ecs"
    elif accelerator == "neuron" and "NEURON_RT_ROOT_COMM_ID" not in environ:
        # The Neuron runtime's root communicator, <main node>:<port>, on a port of its own beside torchrun's
        # (Neuron runtime "NEURON_RT_ROOT_COMM_ID", https://awsdocs-neuron.readthedocs-hosted.com/en/latest/
        # neuron-runtime/nrt-configurable-parameters.html; aws-neuron-samples torch-neuronx/training/aws-batch).
        if port == 65535:
            raise LaunchError(f"master port {port} leaves no port for NEURON_RT_ROOT_COMM_ID (port + 1)")
        env["NEURON_RT_ROOT_COMM_ID"] = f"{master}:{port + 1}"
    elif accelerator not in ("neuron", "other", "none", "cpu", ""):
        raise LaunchError(f"MLCDK_ACCELERATOR={accelerator!r} is not gpu, neuron, other or none")
    return {name: value for name, value in env.items() if name not in environ}


def plan(environ: Mapping[str, str], args: Sequence[str], *,
         own_address: Callable[[], str] = host_address) -> Plan:
    """The torchrun command and the variables to add, from the environment and the launcher's arguments."""
    options, command = _split(args)
    parser = _Parser(prog="python -m mlcdk.launch", allow_abbrev=False,
                     usage="%(prog)s [--dry-run] [--nproc-per-node N] [--master-port P] -- COMMAND...")
    parser.add_argument("--dry-run", action="store_true", help="print the command and variables as JSON")
    parser.add_argument("--nproc-per-node", metavar="N", help="processes per node (MLCDK_NPROC_PER_NODE, 1)")
    parser.add_argument("--master-port", metavar="P", help=f"rendezvous port (MLCDK_MASTER_PORT, {DEFAULT_PORT})")
    parsed = parser.parse_args(options)
    if not command:
        raise LaunchError("missing COMMAND after '--'")

    def setting(flag: str, value: str | None, name: str, default: int, high: int | None = None) -> int:
        if value is not None:
            return _number(flag, value, 1, high)
        return _number(name, environ.get(name, str(default)), 1, high)

    nproc = setting("--nproc-per-node", parsed.nproc_per_node, "MLCDK_NPROC_PER_NODE", 1)
    port = setting("--master-port", parsed.master_port, "MLCDK_MASTER_PORT", DEFAULT_PORT, 65535)
    nnodes, rank, master = _nodes(environ, own_address)
    env = _collectives(environ, master, port)
    # torchrun on PATH, else the module it runs (https://docs.pytorch.org/docs/stable/elastic/run.html).
    torchrun = (["torchrun"] if shutil.which("torchrun", path=environ.get("PATH", os.defpath))
                else [sys.executable, "-m", "torch.distributed.run"])
    return Plan([*torchrun, "--nnodes", str(nnodes), "--node-rank", str(rank), "--nproc-per-node", str(nproc),
                 "--master-addr", master, "--master-port", str(port), "--no-python", *command], env)


# --workdir (exit 4): fetch the pack `mlcdk submit --workdir` uploaded, check its SHA-256, unpack it into the cwd.
WORKDIR_ENV = ("MLCDK_WORKDIR_URI", "MLCDK_WORKDIR_SHA256", "MLCDK_WORKDIR_REGION")
WORKDIR_MAX_BYTES = 100 * 1024 * 1024  # the pack's files before compression (mlcdk.jobs.workdir's limit too)
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
    except LaunchError as error:
        print(f"mlcdk.launch: error: {error}", file=sys.stderr)
        return 2
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


def encoded_source() -> str:
    """This module's source, zlib-compressed and base64-encoded, for the MLCDK_LAUNCHER variable."""
    with open(__file__, "rb") as source:
        return base64.b64encode(zlib.compress(source.read(), 9)).decode("ascii")


def inline_command(args: Sequence[str]) -> list[str]:
    """A container command running this launcher from MLCDK_LAUNCHER, with ``args`` as its arguments."""
    return ["python3", "-c", BOOT, *args]


if __name__ == "__main__":
    sys.exit(main())
