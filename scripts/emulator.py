#!/usr/bin/env python3
"""Deploy TrainingStack and InferenceStack with the real CDK CLI, run a job on the cluster, tear it all down.

Default target: a moto server on 127.0.0.1 (no AWS account, no internet). Steps:

1. start ``moto_server`` on a free port (with the fixes in :func:`moto_fixes`, and Docker-less Batch), tied to
   this driver so that it ends with it however the run ends, SIGKILL included;
2. ``cdk bootstrap aws://123456789012/<region>`` and ``cdk deploy TrainingStack InferenceStack`` against it, with
   dummy credentials and ``-c emulator=true -c removal_policy=destroy -c shared_storage_gib=1200`` (moto skips the
   FSx resources and the read-back says so);
3. read every stack back with boto3 describe calls and print it, the Batch compute environment, queue and job
   definition included;
4. submit a 2-node job with the real CLI (``mlcdk submit --stack TrainingStack --nodes 2 ... -- python3 train.py``),
   wait until moto reports it finished, and print what was recorded. moto marks Batch jobs SUCCEEDED without
   running them: no container runs;
5. ``cdk destroy`` both stacks (falling back to ``POST /moto-api/reset`` if moto cannot delete them), check that
   nothing is left, stop the server and print the total wall time.

Every child (the moto server, each cdk and mlcdk run) ends with this driver: each runs under a guard that leads
its own process group, is told by Linux when the driver dies (``PR_SET_PDEATHSIG``) and also watches a pipe
whose only write end the driver holds; either way it ends its whole group (cdk's node and python children too).

``--target aws`` deploys to the account of your own AWS credentials instead, after you type its account id.

Usage: python scripts/emulator.py [--region us-east-1] [--target emulator|aws]   (or: make deploy [TARGET=aws])
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import ctypes.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
STACKS = ("TrainingStack", "InferenceStack")
TRAINING_STACK = "TrainingStack"
ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
BOOTSTRAP_QUALIFIER = "hnb659fds"
COST_OUTPUT = "EstimatedMonthlyCostUsd"
#: Context for an emulator deploy: the AMI parameter moto knows, stacks whose bucket and keys get deleted, and the
#: training cluster's shared FSx for Lustre file system on (moto's CloudFormation does not model FSx: the read-back
#: lists its file system and association under "not modelled by moto (skipped, not created)").
EMULATOR_CONTEXT = {"emulator": "true", "removal_policy": "destroy", "shared_storage_gib": "1200"}
CDK_TIMEOUT_S = 300
#: The job the emulator run submits with the real CLI, and how long it waits for moto to finish it.
JOB_NAME = "mlcdk-emulator-check"
JOB_NODES = 2
JOB_COMMAND = ("python3", "train.py")
JOB_WAIT_S = 60
SUBMIT_TIMEOUT_S = 120
#: Environment variable naming this run in the environment of every process it starts (its value is unique per
#: run; set it before starting the driver to choose it). tests/integration find a run's processes by it.
RUN_MARKER = "MLCDK_EMULATOR_RUN"
#: How long a guard gives its process group between SIGTERM and SIGKILL.
GUARD_GRACE_S = 5.0


class Failure(Exception):
    """One clear line for the user, naming the step that failed and why; main() prints it and exits 1."""


def failed(step: str, why: str | BaseException) -> Failure:
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}"
    return Failure(f"{step} failed: {why}")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Turn any unexpected exception inside a step into a Failure naming the step, the exception's class and
    message (Failures pass through: they already name their step)."""
    try:
        yield
    except (Failure, _Interrupted):
        raise
    except Exception as error:
        raise failed(name, error) from error


sys.path.insert(0, str(Path(__file__).resolve().parent))
from moto_fixes import MOTO_FIXES, moto_fixes  # noqa: E402  (the module beside this script)


# --------------------------------------------------------------------------------------------------
# Processes: every child ends with this driver
# --------------------------------------------------------------------------------------------------

class _Interrupted(BaseException):
    """Raised from SIGINT/SIGTERM so every finally block runs."""


_children: list[subprocess.Popen] = []
_lifeline: tuple[int, int] | None = None
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, else None (then only the lifeline pipe ties children to the driver).
    MLCDK_EMULATOR_NO_PRCTL=1 makes it None on Linux too: the tests check the lifeline alone that way."""
    if not sys.platform.startswith("linux") or os.environ.get("MLCDK_EMULATOR_NO_PRCTL") == "1":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (PR_SET_PDEATHSIG); False where unavailable.
    With ``parent``, a parent that died before the request took effect is caught too."""
    if _PRCTL is None or _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True


def _preexec_die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn (runs in the child between fork and exec): SIGTERM the child when ``parent`` dies."""
    def preexec() -> None:
        die_with_parent(signal.SIGTERM, parent)
    return preexec


def lifeline() -> int:
    """The read end of a pipe whose only write end this driver holds (both ends are non-inheritable, so no
    child holds the write end): a child that reads EOF on it knows the driver is gone, however it died."""
    global _lifeline
    if _lifeline is None:
        _lifeline = os.pipe()
    return _lifeline[0]


def watch_lifeline(fd: int, on_eof: Callable[[], None]) -> None:
    """Call ``on_eof`` (in a daemon thread) once the driver's end of the lifeline closes."""
    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 64):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        on_eof()
    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def spawn(command: Sequence[str], *, env: dict[str, str], cwd: Path, **popen: Any) -> subprocess.Popen:
    """Start ``command`` under a guard (``--guard``) that leads a new process group and ends that whole group
    when the driver dies (pdeathsig and lifeline) or stops it. Returns the guard's Popen."""
    fd = lifeline()
    guarded = [sys.executable, str(SCRIPT), "--guard", str(fd), "--", *command]
    process = subprocess.Popen(guarded, env=env, cwd=cwd, start_new_session=True, pass_fds=(fd,),
                               preexec_fn=_preexec_die_with(os.getpid()), **popen)
    _children.append(process)
    return process


def guard(fd: int, command: Sequence[str]) -> int:
    """Run ``command`` in this process's group (it leads a new one); end the whole group when the driver is gone
    (EOF on the lifeline ``fd``, or SIGTERM from Linux's pdeathsig or from the driver's stop), or when the command
    exits (stragglers). Returns the command's exit code."""
    ending = threading.Event()

    def end_group(*_: Any) -> None:
        if ending.is_set():
            return
        ending.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the guard outlives its group's SIGTERM, to SIGKILL it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(0, signal.SIGTERM)
        timer = threading.Timer(GUARD_GRACE_S, lambda: os.killpg(0, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, end_group)
    signal.signal(signal.SIGINT, end_group)
    die_with_parent(signal.SIGTERM)
    try:
        child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL)
    except OSError as error:
        print(f"guard: cannot start {command[0]}: {type(error).__name__}: {error}", file=sys.stderr)
        return 127
    watch_lifeline(fd, lambda: os.kill(os.getpid(), signal.SIGTERM))
    code = child.wait()
    if ending.is_set():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(0, signal.SIGKILL)  # the group's stragglers, and this guard
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)  # anything the command left behind in its group
    return code if code >= 0 else 128 - code


def _on_signal(signum: int, _frame: Any) -> None:
    raise _Interrupted(signum)


def _stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop one child we started, by its PID (and its process group, which it leads)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)  # it leads its own group: its children (node, python app.py) too
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _exit_text(code: int | None) -> str:
    """An exit status in words: "exit 1", "killed by SIGKILL" (a negative Popen returncode)."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    if 128 < code < 128 + 65:  # a guard reports a command killed by signal N as exit 128+N, as shells do
        return f"exit {code}: killed by {_signal_name(code - 128)}"
    return f"exit {code}"


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(lines[-count:]) if lines else "(it printed nothing)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _last_lines(log.read_text(errors="replace") if log.exists() else "", 3)
            raise failed("start moto", f"the moto server exited ({_exit_text(process.returncode)}) before answering "
                                       f"on {url}; its log ends: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                return
        except OSError as error:
            last = error
            time.sleep(0.2)
    raise failed("start moto", f"the moto server did not answer on {url} within {timeout:.0f} s "
                               f"(last attempt: {type(last).__name__}: {last})")


def moto_api(url: str, path: str, body: dict | None = None, *, method: str = "POST") -> Any:
    """Call moto's own API (/moto-api/...); return its JSON answer, if any."""
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode() or "null"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def serve_moto(port: int, lifeline_fd: int | None = None) -> None:
    """The moto server process: moto_server -H 127.0.0.1 -p PORT, with moto_fixes(); it exits when the driver
    does (pdeathsig, and EOF on the driver's lifeline)."""
    from moto import server
    if lifeline_fd is not None:
        die_with_parent(signal.SIGTERM)

        def driver_gone() -> None:
            print("moto server: the driver is gone (lifeline closed); exiting", file=sys.stderr, flush=True)
            os._exit(0)
        watch_lifeline(lifeline_fd, driver_gone)
    with moto_fixes():
        server.main(["-H", "127.0.0.1", "-p", str(port)])


def emulator_environment(endpoint: str, region: str, run_id: str | None = None) -> dict[str, str]:
    """A clean environment: dummy credentials and the emulator endpoint; no profile, config or real keys."""
    bin_dirs = [str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent)]
    env = {
        "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": os.environ.get("HOME", tempfile.gettempdir()),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": "/nonexistent/mlcdk-emulator-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/mlcdk-emulator-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "PYTHONUNBUFFERED": "1",
        RUN_MARKER: run_id or os.environ.get(RUN_MARKER) or uuid.uuid4().hex,
    }
    for passthrough in ("JSII_NODE", "TMPDIR"):
        if passthrough in os.environ:
            env[passthrough] = os.environ[passthrough]
    return env


def cdk_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "cdk"
    if not local.exists():
        raise FileNotFoundError(f"the pinned CDK CLI is missing ({local}); run `make setup`")
    return str(local)


def run_cdk(step_name: str, label: str, args: Sequence[str], env: dict[str, str], *, cwd: Path,
            capture: bool = True) -> str:
    """Run the CDK CLI; print one status line; on failure show its last lines and raise a Failure naming the step."""
    started = time.monotonic()
    print(f"==> {label} ...", flush=True)
    with step(step_name):
        command = [cdk_binary(), *args]
        if capture:
            process = spawn(command, env=env, cwd=cwd, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        else:
            # Interactive runs (--target aws) stay in the terminal's foreground group, where CDK can prompt and
            # Ctrl-C reaches every process; Linux still SIGTERMs cdk if the driver dies.
            process = subprocess.Popen(command, cwd=cwd, env=env, text=True,
                                       preexec_fn=_preexec_die_with(os.getpid()))
            _children.append(process)
    try:
        output, _ = process.communicate(timeout=CDK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise failed(step_name, f"{label} did not finish within {CDK_TIMEOUT_S} s (stopped it)") from None
    finally:
        _stop(process)
        _children.remove(process)
    elapsed = time.monotonic() - started
    output = output or ""
    if process.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        print("\n".join(f"    | {line}" for line in lines[-25:]), file=sys.stderr)
        errors = [line.strip() for line in lines if "❌" in line or "Error" in line or "error" in line]
        reason = " / ".join(errors[-3:]) if errors else f"its output ends: {_last_lines(output)}"
        raise failed(step_name, f"{label} ({_exit_text(process.returncode)}): {reason}")
    print(f"    ok ({elapsed:.1f} s)", flush=True)
    return output


# --------------------------------------------------------------------------------------------------
# Read back what was created
# --------------------------------------------------------------------------------------------------

def clients(endpoint: str | None, region: str):
    import boto3
    if endpoint:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                aws_session_token="testing", region_name=region)
    else:
        session = boto3.Session(region_name=region)

    def client(service: str):
        return session.client(service, endpoint_url=endpoint) if endpoint else session.client(service)
    return client


def _rule_text(permission: dict, own_group: str) -> str:
    protocol = permission.get("IpProtocol", "?")
    what = "all traffic" if protocol == "-1" else f"{protocol} {permission.get('FromPort')}-{permission.get('ToPort')}"
    peers = [r["CidrIp"] for r in permission.get("IpRanges", [])]
    peers += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
    peers += ["itself (self reference)" if p.get("GroupId") == own_group else p.get("GroupId", "?")
              for p in permission.get("UserIdGroupPairs", [])]
    peers += [p.get("PrefixListId", "?") for p in permission.get("PrefixListIds", [])]
    return f"{what} {'/'.join(peers) or '(no peer)'}"


def describe_stack(client, stack: str, template: dict) -> dict[str, Any]:
    """Print one stack as the emulator holds it; return facts for the summary and the leftover check."""
    cfn, ec2, autoscaling = client("cloudformation"), client("ec2"), client("autoscaling")
    kms, s3 = client("kms"), client("s3")
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    created = [r for r in resources if r.get("LogicalResourceId") and r.get("ResourceType")]
    by_type = collections.defaultdict(list)
    for resource in created:
        by_type[resource["ResourceType"]].append(resource)
    declared = template.get("Resources", {})
    created_ids = {r["LogicalResourceId"] for r in created}
    skipped = collections.Counter(v["Type"] for k, v in declared.items() if k not in created_ids)
    facts: dict[str, Any] = {"status": description["StackStatus"], "asgs": [], "launch_templates": [],
                             "security_groups": [], "keys": [], "buckets": [], "compute_environments": [],
                             "job_queues": [], "job_definitions": [], "log_groups": [], "rules": [],
                             "outputs": {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}}

    print(f"\n{stack}: {description['StackStatus']}  ({len(created)} of {len(declared)} template resources "
          "created in the emulator)")
    counts = collections.Counter(r["ResourceType"] for r in created)
    print("  resources: " + ", ".join(f"{n} {t.replace('AWS::', '')}" for t, n in counts.most_common()))
    if skipped:
        print("  not modelled by moto (skipped, not created): "
              + ", ".join(f"{n} {t.replace('AWS::', '')}" for t, n in skipped.most_common()))

    pinned = {r["PhysicalResourceId"]: declared[r["LogicalResourceId"]]["Properties"]["AvailabilityZoneId"]
              for r in by_type.get("AWS::EC2::Subnet", [])
              if "AvailabilityZoneId" in declared.get(r["LogicalResourceId"], {}).get("Properties", {})}
    key_names = {r["PhysicalResourceId"]: r["LogicalResourceId"] for r in by_type.get("AWS::KMS::Key", [])}
    for resource in by_type.get("AWS::AutoScaling::AutoScalingGroup", []):
        group = autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[resource["PhysicalResourceId"]])["AutoScalingGroups"][0]
        facts["asgs"].append(group["AutoScalingGroupName"])
        subnet_ids = [s for s in group.get("VPCZoneIdentifier", "").split(",") if s]
        subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"] if subnet_ids else []
        where = ", ".join(f"{s['SubnetId']} ({s['AvailabilityZone']}, {s.get('AvailabilityZoneId', '?')}"
                          + (f"; the template pins AZ ID {pinned[s['SubnetId']]}, which moto ignores"
                             if pinned.get(s["SubnetId"], s.get("AvailabilityZoneId")) != s.get("AvailabilityZoneId") else "")
                          + ")" for s in subnets)
        print(f"  Auto Scaling group {group['AutoScalingGroupName']}")
        print(f"    size: min {group['MinSize']}, desired {group['DesiredCapacity']}, max {group['MaxSize']}; "
              f"{len(group.get('Instances', []))} emulated instance(s); subnets: {where or 'none'}")
        spec = group.get("LaunchTemplate") or group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get(
            "LaunchTemplateSpecification", {})
        overrides = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get("Overrides", [])
        if overrides:
            print("    instance types (mixed instances policy): " + ", ".join(o["InstanceType"] for o in overrides))
        if spec.get("LaunchTemplateId"):
            version = ec2.describe_launch_template_versions(
                LaunchTemplateId=spec["LaunchTemplateId"], Versions=[str(spec.get("Version", "$Latest"))]
            )["LaunchTemplateVersions"][0]
            describe_launch_template(version, key_names)
    for resource in by_type.get("AWS::EC2::LaunchTemplate", []):
        facts["launch_templates"].append(resource["PhysicalResourceId"])
    describe_batch(client, by_type, key_names, facts, declared)

    declared_egress = [v for v in declared.values() if v["Type"] == "AWS::EC2::SecurityGroupEgress"]
    for resource in by_type.get("AWS::EC2::SecurityGroup", []):
        group = ec2.describe_security_groups(GroupIds=[resource["PhysicalResourceId"]])["SecurityGroups"][0]
        facts["security_groups"].append(group["GroupId"])
        print(f"  security group {group['GroupId']} ({group.get('Description', '')})")
        for permission in group.get("IpPermissions", []):
            print(f"    ingress: {_rule_text(permission, group['GroupId'])}")
        if not group.get("IpPermissions"):
            print("    ingress: none")
        for permission in group.get("IpPermissionsEgress", []):
            print(f"    egress:  {_rule_text(permission, group['GroupId'])}")
        if declared_egress:
            print(f"    (the template also declares {len(declared_egress)} AWS::EC2::SecurityGroupEgress rule(s), e.g. "
                  f"'{declared_egress[0]['Properties'].get('Description', '')}'; moto does not model that type)")

    for key_id, logical in key_names.items():
        facts["keys"].append(key_id)
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        rotation = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        print(f"  KMS key {key_id} ({logical}): {metadata['KeyState']}, rotation {'on' if rotation else 'OFF'}"
              f" - {metadata.get('Description', '')}")

    for resource in by_type.get("AWS::S3::Bucket", []):
        bucket = resource["PhysicalResourceId"]
        facts["buckets"].append(bucket)
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            sse = rules[0]["ApplyServerSideEncryptionByDefault"]
            encryption = sse["SSEAlgorithm"] + (f" with key {sse['KMSMasterKeyID']}" if sse.get("KMSMasterKeyID") else "")
        except Exception as error:  # moto answers ServerSideEncryptionConfigurationNotFoundError when unset
            encryption = f"none ({type(error).__name__})"
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status", "not enabled")
        wanted = declared.get(resource["LogicalResourceId"], {}).get("Properties", {}).get(
            "VersioningConfiguration", {}).get("Status")
        if wanted and wanted != versioning:
            versioning += f" (the template asks for {wanted}; moto ignores VersioningConfiguration)"
        print(f"  S3 bucket {bucket}: encryption {encryption}; versioning {versioning}")

    outputs = description.get("Outputs", [])
    costs = [o for o in outputs if COST_OUTPUT in o["OutputKey"]]
    for output in costs:
        print(f"  estimated monthly cost: ${float(output['OutputValue']):,.2f}  - {output.get('Description', '')}")
    if not costs:
        print("  estimated monthly cost: none (this stack has no cost output)")
    return facts


def describe_launch_template(version: dict, key_names: dict[str, str]) -> None:
    data = version["LaunchTemplateData"]
    interfaces = data.get("NetworkInterfaces", [])
    kinds = collections.Counter(i.get("InterfaceType", "interface") for i in interfaces)
    public = any(i.get("AssociatePublicIpAddress") for i in interfaces)
    print(f"    launch template {version['LaunchTemplateId']} version {version['VersionNumber']}: "
          f"{data.get('InstanceType', '(type from the group)')}, image {data.get('ImageId', '?')}")
    print(f"      network interfaces: {len(interfaces)} ("
          + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + f"); efa-only: {kinds.get('efa-only', 0)}; "
          f"public IP: {'yes' if public else 'no'}; launch-template SecurityGroupIds: "
          f"{data.get('SecurityGroupIds') or 'none'}")
    metadata = data.get("MetadataOptions", {})
    print(f"      instance metadata: HttpTokens={metadata.get('HttpTokens', 'not set')}, "
          f"HttpPutResponseHopLimit={metadata.get('HttpPutResponseHopLimit', 'not set')}")
    for mapping in data.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        key = ebs.get("KmsKeyId", "")
        key_id = key.rsplit("/", 1)[-1]
        print(f"      volume {mapping.get('DeviceName')}: {ebs.get('VolumeSize')} GiB {ebs.get('VolumeType')}, "
              f"encrypted {ebs.get('Encrypted')}, KMS key {key or 'none'}"
              + (f" ({key_names[key_id]})" if key_id in key_names else ""))


def leftovers(client, facts: dict[str, dict]) -> list[str]:
    """What the stacks created and is still there after teardown."""
    ec2, autoscaling, kms, batch, logs, events = (client(s) for s in ("ec2", "autoscaling", "kms", "batch", "logs",
                                                                       "events"))
    left = []
    asgs = {g["AutoScalingGroupName"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}
    templates = {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    environments = {e["computeEnvironmentArn"] for e in batch.describe_compute_environments()["computeEnvironments"]}
    queues = {q["jobQueueArn"] for q in batch.describe_job_queues()["jobQueues"]}
    definitions = {d["jobDefinitionArn"] for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]}
    log_groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    rules = {r["Name"] for r in events.list_rules()["Rules"]}
    for stack, found in facts.items():
        left += [f"{stack}: Auto Scaling group {n}" for n in found["asgs"] if n in asgs]
        left += [f"{stack}: launch template {t}" for t in found["launch_templates"] if t in templates]
        left += [f"{stack}: security group {g}" for g in found["security_groups"] if g in groups]
        left += [f"{stack}: Batch compute environment {e}" for e in found["compute_environments"] if e in environments]
        left += [f"{stack}: Batch job queue {q}" for q in found["job_queues"] if q in queues]
        left += [f"{stack}: ACTIVE Batch job definition {d}" for d in found["job_definitions"] if d in definitions]
        left += [f"{stack}: log group {g}" for g in found["log_groups"] if g in log_groups]
        left += [f"{stack}: EventBridge rule {r}" for r in found["rules"] if r in rules]
        for key_id in found["keys"]:
            try:
                state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
            except kms.exceptions.NotFoundException:
                continue
            if state not in ("PendingDeletion", "Disabled"):
                left.append(f"{stack}: KMS key {key_id} ({state})")
    return left


def describe_batch(client, by_type: dict[str, list[dict]], key_names: dict[str, str], facts: dict[str, Any],
                   declared: dict[str, dict]) -> None:
    """Print the stack's AWS Batch side: compute environment (and its launch template), queue, job definition,
    job log group and job-state rule."""
    batch, ec2, logs, events = client("batch"), client("ec2"), client("logs"), client("events")
    logical = {r["PhysicalResourceId"]: r["LogicalResourceId"]
               for r in by_type.get("AWS::Batch::ComputeEnvironment", [])}
    found = batch.describe_compute_environments(computeEnvironments=list(logical))["computeEnvironments"] \
        if logical else []
    for environment in found:
        facts["compute_environments"].append(environment["computeEnvironmentArn"])
        resources = environment.get("computeResources", {})
        asked = declared.get(logical.get(environment["computeEnvironmentArn"], ""), {}).get("Properties", {}).get(
            "ComputeResources", {})
        desired = f", desired {resources['desiredvCpus']}" if "desiredvCpus" in resources else ""
        print(f"  Batch compute environment {environment['computeEnvironmentName']}")
        print(f"    {environment.get('type')} {resources.get('type', '?')}, state {environment.get('state')}, status "
              f"{environment.get('status')}; vCPUs: min {resources.get('minvCpus')}, max {resources.get('maxvCpus')}"
              f"{desired}; instance types: {', '.join(resources.get('instanceTypes', [])) or 'none'}; "
              f"allocation {resources.get('allocationStrategy', '?')}")
        images = ", ".join(f"{c.get('imageType')} {c.get('imageIdOverride', '')}".strip()
                           for c in resources.get("ec2Configuration", []))
        groups = resources.get("securityGroupIds") or "none (the launch template network interfaces carry the group)"
        print(f"    image: {images or 'Batch default'}; subnets: {', '.join(resources.get('subnets', []))}; "
              f"SecurityGroupIds: {groups}; service role: {environment.get('serviceRole', 'none').rsplit('/', 1)[-1]}")
        if asked.get("PlacementGroup") or resources.get("placementGroup"):
            print(f"    placement group: {resources.get('placementGroup') or 'none'}"
                  + (" (the template asks for a cluster placement group; moto does not model "
                     "AWS::EC2::PlacementGroup, so the environment has none)" if not resources.get("placementGroup")
                     else ""))
        spec = resources.get("launchTemplate", {})
        if spec.get("launchTemplateId") or spec.get("launchTemplateName"):
            query = ({"LaunchTemplateIds": [spec["launchTemplateId"]]} if spec.get("launchTemplateId")
                     else {"LaunchTemplateNames": [spec["launchTemplateName"]]})
            template = ec2.describe_launch_templates(**query)["LaunchTemplates"][0]
            wanted = str(spec.get("version", "$Default"))
            latest = template["LatestVersionNumber"]
            print(f"    launch template version: {wanted} (pinned; the template's latest is {latest}"
                  + (")" if wanted == str(latest) else f"; NOT the latest, Batch keeps launching version {wanted})"))
            version = ec2.describe_launch_template_versions(
                LaunchTemplateId=template["LaunchTemplateId"], Versions=[wanted])["LaunchTemplateVersions"][0]
            describe_launch_template(version, key_names)

    arns = [r["PhysicalResourceId"] for r in by_type.get("AWS::Batch::JobQueue", [])]
    for queue in batch.describe_job_queues(jobQueues=arns)["jobQueues"] if arns else []:
        facts["job_queues"].append(queue["jobQueueArn"])
        order = ", ".join(f"{c['computeEnvironment'].rsplit('/', 1)[-1]} (order {c['order']})"
                          for c in queue.get("computeEnvironmentOrder", []))
        print(f"  Batch job queue {queue['jobQueueName']}: state {queue['state']}, status {queue.get('status')}, "
              f"priority {queue['priority']}; compute environments: {order}")

    arns = [r["PhysicalResourceId"] for r in by_type.get("AWS::Batch::JobDefinition", [])]
    for definition in batch.describe_job_definitions(jobDefinitions=arns)["jobDefinitions"] if arns else []:
        facts["job_definitions"].append(definition["jobDefinitionArn"])
        nodes = definition.get("nodeProperties", {})
        retry = definition.get("retryStrategy") or {}
        timeout = (definition.get("timeout") or {}).get("attemptDurationSeconds")
        print(f"  Batch job definition {definition['jobDefinitionName']}:{definition['revision']}: type "
              f"{definition['type']}, status {definition['status']}"
              + (f", NumNodes {nodes.get('numNodes')} (main node {nodes.get('mainNode')})" if nodes else "")
              + f"; platform {', '.join(definition.get('platformCapabilities') or ['?'])}; retry attempts "
              f"{retry.get('attempts', 'not set')}; timeout {f'{timeout} s' if timeout else 'none'}")
        ranges = [(r.get("targetNodes"), r.get("container", {})) for r in nodes.get("nodeRangeProperties", [])]
        if "containerProperties" in definition:
            ranges.append(("(single node)", definition["containerProperties"]))
        for target, container in ranges:
            needs = {r["type"]: r["value"] for r in container.get("resourceRequirements", [])}
            devices = container.get("linuxParameters", {}).get("devices", [])
            print(f"    node range \"{target}\": image {container.get('image')}; {needs.get('VCPU', '?')} vCPUs, "
                  f"{needs.get('MEMORY', '?')} MiB{', ' + needs['GPU'] + ' GPUs' if 'GPU' in needs else ''}; "
                  f"{len(devices)} host devices; command {_command_text(container.get('command', []))}")

    for resource in by_type.get("AWS::Logs::LogGroup", []):
        found = [g for g in logs.describe_log_groups(logGroupNamePrefix=resource["PhysicalResourceId"])["logGroups"]
                 if g["logGroupName"] == resource["PhysicalResourceId"]]
        if not found:
            continue
        group = found[0]
        facts["log_groups"].append(group["logGroupName"])
        key = group.get("kmsKeyId", "")
        print(f"  log group {group['logGroupName']}: KMS key {key or 'none'}"
              + (f" ({key_names[key.rsplit('/', 1)[-1]]})" if key.rsplit("/", 1)[-1] in key_names else "")
              + f", retention {group.get('retentionInDays', 'never expires')} days")

    for resource in by_type.get("AWS::Events::Rule", []):
        rule = events.describe_rule(Name=resource["PhysicalResourceId"])
        facts["rules"].append(rule["Name"])
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        pattern = json.loads(rule.get("EventPattern") or "{}")
        detail = pattern.get("detail", {})
        print(f"  EventBridge rule {rule['Name']}: {rule.get('State')}; {', '.join(pattern.get('detail-type', []))} "
              f"with status {'/'.join(detail.get('status', []))} on "
              f"{', '.join(q.rsplit('/', 1)[-1] for q in detail.get('jobQueue', [])) or 'any queue'}; "
              f"targets: {', '.join(t['Arn'].rsplit(':', 1)[-1] for t in targets) or 'none'}")


def _command_text(command: Sequence[str]) -> str:
    """A container command for one line: long inline scripts (the mlcdk launcher's bootstrap) abbreviated."""
    return " ".join(f"<{len(arg)}-character inline script>" if len(arg) > 60 else shlex.quote(arg)
                    for arg in command) or "(none)"


def stack_gone(cfn, stack: str) -> str:
    """The status of the newest stack named ``stack`` (ListStacks keeps deleted stacks as DELETE_COMPLETE)."""
    summaries = [s for page in cfn.get_paginator("list_stacks").paginate() for s in page["StackSummaries"]
                 if s["StackName"] == stack]
    if not summaries:
        return "NOT FOUND"
    return max(summaries, key=lambda s: s["CreationTime"])["StackStatus"]




# --------------------------------------------------------------------------------------------------
# Run a job with the real CLI
# --------------------------------------------------------------------------------------------------

def submit_job(env: dict[str, str], region: str) -> dict[str, Any]:
    """``mlcdk submit ... --json -- python3 train.py`` against the emulator; return its JSON answer."""
    command = ["mlcdk", "submit", "--stack", TRAINING_STACK, "--region", region, "--nodes", str(JOB_NODES),
               "--name", JOB_NAME, "--json", "--", *JOB_COMMAND]
    mlcdk = shutil.which("mlcdk", path=env["PATH"])
    if mlcdk is None:
        raise failed("submit", "the mlcdk command is not installed in the virtualenv (run `make setup`)")
    print(f"==> {shlex.join(command)} ...", flush=True)
    started = time.monotonic()
    with step("submit"):
        process = spawn([mlcdk, *command[1:]], env=env, cwd=ROOT, text=True, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=SUBMIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise failed("submit", f"mlcdk submit did not finish within {SUBMIT_TIMEOUT_S} s (stopped it)") from None
    finally:
        _stop(process)
        _children.remove(process)
    if process.returncode != 0:
        raise failed("submit", f"mlcdk submit ({_exit_text(process.returncode)}): {_last_lines(stderr or stdout)}")
    try:
        answer = json.loads(stdout)
        answer["jobId"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise failed("submit", f"mlcdk submit --json printed no job: {type(error).__name__}: {error}; "
                               f"its output ends: {_last_lines(stdout)}") from None
    print(f"    ok ({time.monotonic() - started:.1f} s): job {answer['jobId']} on {answer.get('nodes')} node(s), "
          f"queue {str(answer.get('queue', '?')).rsplit('/', 1)[-1]}", flush=True)
    return answer


def wait_for_job(client, job_id: str, timeout: float = JOB_WAIT_S) -> dict[str, Any]:
    """Poll DescribeJobs until the job SUCCEEDED or FAILED (at most ``timeout`` s); return its description."""
    batch = client("batch")
    print(f"==> waiting for job {job_id} (DescribeJobs every 0.5 s, at most {timeout:.0f} s) ...", flush=True)
    started = time.monotonic()
    seen: list[str] = []
    while True:
        found = batch.describe_jobs(jobs=[job_id])["jobs"]
        if not found:
            raise failed("wait for job", f"DescribeJobs does not know job {job_id}")
        job = found[0]
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("SUCCEEDED", "FAILED"):
            break
        if time.monotonic() - started > timeout:
            raise failed("wait for job", f"job {job_id} is still {job['status']} after {timeout:.0f} s "
                                         f"(statuses seen: {' -> '.join(seen)})")
        time.sleep(0.5)
    print(f"    {job['status']} after {time.monotonic() - started:.1f} s (statuses seen: {' -> '.join(seen)})")
    if job["status"] != "SUCCEEDED":
        raise failed("wait for job", f"job {job_id} FAILED: {job.get('statusReason', 'no reason given')}")
    return job


def describe_job(client, job: dict[str, Any]) -> None:
    """Print what the emulator recorded for the job, and say plainly that nothing ran."""
    definition = client("batch").describe_job_definitions(jobDefinitions=[job["jobDefinition"]])["jobDefinitions"][0]
    nodes = job.get("nodeProperties", {})
    print(f"  job {job['jobId']} ({job['jobName']}): {job['status']}")
    print(f"    nodes: {nodes.get('numNodes', 1)} (main node {nodes.get('mainNode', 0)}); queue "
          f"{job.get('jobQueue', '?').rsplit('/', 1)[-1]}; attempts: {len(job.get('attempts', []))}")
    print(f"    job definition {definition['jobDefinitionName']}: type {definition['type']}, revision "
          f"{definition['revision']}")
    for node_range in nodes.get("nodeRangeProperties", []):
        container = node_range.get("container", {})
        command = _command_text(container.get("command", []))
        print(f"    node range \"{node_range.get('targetNodes')}\": command {command}")
        print(f"      image {container.get('image')}")
    if "container" in job and not nodes:
        print(f"    command {_command_text(job['container'].get('command', []))}")
    print("    NOTE: moto marks Batch jobs SUCCEEDED without running them (Docker-less Batch, use_docker=false): "
          "no container ran, no node started and train.py was not executed. This checks the stack, the CLI and "
          "the job's shape, not training.")


# --------------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------------

def run_emulator(region: str) -> None:
    with step("start moto"):
        import moto
        port = free_port()
    endpoint = f"http://localhost:{port}"  # moto recognises only localhost in S3 TemplateURLs
    server_url = f"http://127.0.0.1:{port}"
    env = emulator_environment(endpoint, region)
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(variable, None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    work = Path(tempfile.mkdtemp(prefix="mlcdk-emulator-"))
    outdir = work / "cdk.out"
    log = work / "moto.log"
    fd = lifeline()
    with step("start moto"), open(log, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--serve-moto", str(port), "--lifeline-fd", str(fd)],
            env=dict(env, MOTO_PORT=str(port)), cwd=work, start_new_session=True, pass_fds=(fd,),
            preexec_fn=_preexec_die_with(os.getpid()), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT)
    print(f"==> moto {moto.__version__} server on {endpoint} (pid {server.pid}, log {log}, run {env[RUN_MARKER]})",
          flush=True)
    print("    with fixes for moto gaps:")
    for fix in MOTO_FIXES:
        print(f"    - {fix}")
    print(f"    tied to this driver (pid {os.getpid()}): "
          + ("PR_SET_PDEATHSIG and a lifeline pipe" if _PRCTL is not None else "a lifeline pipe (no prctl here)"),
          flush=True)
    succeeded = False
    try:
        wait_until_up(server_url, server, log)
        with step("start moto"):
            # Lambda functions (CDK's custom-resource providers) are stored but never run, and Batch jobs are
            # marked SUCCEEDED without running: no Docker here.
            moto_api(server_url, "/moto-api/config", {"batch": {"use_docker": False}, "lambda": {"use_docker": False}})
            config = moto_api(server_url, "/moto-api/config", method="GET")
        if config.get("batch", {}).get("use_docker") is not False:
            raise failed("start moto", f"moto did not take the Docker-less Batch config: it answers {config}")
        client = clients(endpoint, region)
        # Bootstrap from an empty directory: no cdk.json there, so the CLI does not synthesize the app first.
        run_cdk("bootstrap", f"cdk bootstrap aws://{ACCOUNT}/{region}",
                ["bootstrap", f"aws://{ACCOUNT}/{region}", "--no-notices"], env, cwd=work)
        context = dict(EMULATOR_CONTEXT, region=region, account=ACCOUNT)
        flags = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
        run_cdk("deploy", "cdk deploy " + " ".join(STACKS),
                ["deploy", *STACKS, "--require-approval", "never", "--no-notices", *flags, "--output", str(outdir)],
                env, cwd=ROOT)
        facts = {}
        with step("read back"):
            for stack in STACKS:
                template = json.loads((outdir / f"{stack}.template.json").read_text())
                facts[stack] = describe_stack(client, stack, template)
        failed_stacks = [f"{s} is {f['status']}" for s, f in facts.items() if f["status"] != "CREATE_COMPLETE"]
        if failed_stacks:
            raise failed("deploy", "stacks did not complete: " + "; ".join(failed_stacks))
        if "JobQueue" not in facts[TRAINING_STACK]["outputs"]:
            raise failed("read back", f"{TRAINING_STACK} has no JobQueue output (deployed with engine=nodes?): "
                                      "there is no Batch queue to submit to")

        print()
        answer = submit_job(env, region)
        with step("wait for job"):
            job = wait_for_job(client, answer["jobId"])
        with step("read back the job"):
            describe_job(client, job)

        print()
        teardown(client, env, outdir, server_url, facts)
        succeeded = True
    finally:
        for child in list(_children):
            _stop(child)
        _stop(server)
        print(f"==> moto server stopped (pid {server.pid}, {_exit_text(server.returncode)})")
        if succeeded:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"    kept for inspection: {work} (moto.log, cdk.out)")


def teardown(client, env: dict[str, str], outdir: Path, server_url: str, facts: dict[str, dict]) -> None:
    cfn = client("cloudformation")
    try:
        # The synthesized assembly is the app: no second synth, and exactly the stacks that were deployed.
        run_cdk("destroy", "cdk destroy " + " ".join(STACKS),
                ["destroy", *STACKS, "--force", "--no-notices", "--app", str(outdir)], env, cwd=ROOT)
        with step("destroy"):
            states = {stack: stack_gone(cfn, stack) for stack in STACKS}
        for stack, state in states.items():
            print(f"    {stack}: {state}")
        if any(state != "DELETE_COMPLETE" for state in states.values()):
            raise failed("destroy", "stacks not deleted: " + ", ".join(f"{s} {v}" for s, v in states.items()))
        with step("destroy (leftover check)"):
            left = leftovers(client, facts)
        if left:
            raise failed("destroy", "left behind after cdk destroy: " + "; ".join(left))
        print("    left behind: nothing (no Auto Scaling group, launch template, security group, Batch compute "
              "environment, job queue, active job definition, log group or EventBridge rule of either stack; their "
              "KMS keys are gone or pending deletion)")
        with step("destroy (CDKToolkit)"):
            cfn.delete_stack(StackName="CDKToolkit")
            print(f"    CDKToolkit: {stack_gone(cfn, 'CDKToolkit')}")
        print("    teardown: cdk destroy")
    except Failure as error:
        print(f"    {error}", file=sys.stderr)
        print("    teardown: FALLBACK to POST /moto-api/reset (moto could not delete the stacks cleanly)")
        with step("destroy (fallback POST /moto-api/reset)"):
            moto_api(server_url, "/moto-api/reset")
            remaining = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
        print(f"    after reset: {len(remaining)} stack(s) in the emulator")


def run_aws(region: str | None) -> None:
    """Deploy both stacks to the account of the user's credentials, after a typed confirmation (no emulator)."""
    import boto3
    import botocore.exceptions

    if not sys.stdin.isatty():
        raise failed("confirm the account", "--target aws needs an interactive terminal to confirm the account; "
                                            "refusing")
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if session.get_credentials() is None:
        raise failed("find credentials", "--target aws: no AWS credentials found (set AWS_PROFILE or run "
                                         "`aws configure`)")
    region = region or session.region_name
    if not region:
        raise failed("find the region", "--target aws: no region; pass --region or set AWS_REGION")
    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise failed("identify the account", error) from None
    account = identity["Account"]
    print(f"This deploys {', '.join(STACKS)} to the REAL account {account} ({identity['Arn']}) in {region}.")
    print("Accelerated instances cost real money (the stacks' EstimatedMonthlyCostUsd outputs show the estimate).")
    answer = input(f"Type the account id {account} to continue: ").strip()
    if answer != account:
        raise failed("confirm the account", f"you typed {answer!r}, not {account}; nothing was deployed")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    run_cdk("bootstrap", f"cdk bootstrap aws://{account}/{region}", ["bootstrap", f"aws://{account}/{region}"], env,
            cwd=ROOT, capture=False)
    run_cdk("deploy", "cdk deploy " + " ".join(STACKS),
            ["deploy", *STACKS, "-c", f"region={region}", "-c", f"account={account}"], env, cwd=ROOT, capture=False)
    print(f"Deployed. Remove with: npx cdk destroy {' '.join(STACKS)} -c region={region} -c account={account}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--guard"]:  # internal: python emulator.py --guard FD -- COMMAND...
        if len(argv) < 4 or argv[2] != "--":
            print("usage: emulator.py --guard FD -- COMMAND...", file=sys.stderr)
            return 2
        return guard(int(argv[1]), argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                        help="emulator (default): a local moto server; aws: your account, after confirmation")
    parser.add_argument("--region", default=None, help=f"deploy region (emulator default: {DEFAULT_REGION})")
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--lifeline-fd", type=int, metavar="FD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(args.serve_moto, args.lifeline_fd)
        return 0

    started = time.monotonic()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        if args.target == "aws":
            run_aws(args.region)
        else:
            run_emulator(args.region or DEFAULT_REGION)
    except Failure as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except _Interrupted as interrupt:
        signum = interrupt.args[0]
        print(f"error: interrupted by {signal.Signals(signum).name}; stopped what this run had started",
              file=sys.stderr)
        code = 128 + signum
    except Exception as error:  # a bug of this script: still one line, with its type
        print(f"error: unexpected {type(error).__name__} outside any step: {error}", file=sys.stderr)
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"Total wall time: {time.monotonic() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
