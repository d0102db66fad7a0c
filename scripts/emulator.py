#!/usr/bin/env python3
"""Deploy TrainingStack and InferenceStack with the real CDK CLI, show what was created, and tear it all down.

Default target: a moto server on 127.0.0.1 (no AWS account, no internet). Steps:

1. start ``moto_server`` on a free port (with the fixes in :func:`moto_fixes`), stopped by PID however the run ends;
2. ``cdk bootstrap aws://123456789012/<region>`` and ``cdk deploy TrainingStack InferenceStack`` against it, with
   dummy credentials and ``-c emulator=true -c removal_policy=destroy``;
3. read every stack back with boto3 describe calls and print it;
4. ``cdk destroy`` both stacks (falling back to ``POST /moto-api/reset`` if moto cannot delete them), check that
   nothing is left, stop the server and print the total wall time.

``--target aws`` deploys to the account of your own AWS credentials instead, after you type its account id.

Usage: python scripts/emulator.py [--region us-east-1] [--target emulator|aws]   (or: make deploy [TARGET=aws])
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("TrainingStack", "InferenceStack")
ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
BOOTSTRAP_QUALIFIER = "hnb659fds"
COST_OUTPUT = "EstimatedMonthlyCostUsd"
#: Context for an emulator deploy: the AMI parameter moto knows, and stacks whose bucket and keys get deleted.
EMULATOR_CONTEXT = {"emulator": "true", "removal_policy": "destroy"}
CDK_TIMEOUT_S = 300


class Failure(Exception):
    """One clear line for the user; main() prints it and exits 1."""


sys.path.insert(0, str(Path(__file__).resolve().parent))
from moto_fixes import MOTO_FIXES, moto_fixes  # noqa: E402  (the module beside this script)


def serve_moto(port: int) -> None:
    """The moto server process: moto_server -H 127.0.0.1 -p PORT, with moto_fixes()."""
    from moto import server
    with moto_fixes():
        server.main(["-H", "127.0.0.1", "-p", str(port)])


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------

class _Interrupted(BaseException):
    """Raised from SIGINT/SIGTERM so every finally block runs."""


_children: list[subprocess.Popen] = []


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failure(f"the moto server exited with code {process.returncode} before answering on {url}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise Failure(f"the moto server did not answer on {url} within {timeout:.0f} s")


def moto_post(url: str, path: str, body: dict | None = None) -> None:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def emulator_environment(endpoint: str, region: str) -> dict[str, str]:
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
    }
    for passthrough in ("JSII_NODE", "TMPDIR"):
        if passthrough in os.environ:
            env[passthrough] = os.environ[passthrough]
    return env


def cdk_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "cdk"
    if not local.exists():
        raise Failure("the pinned CDK CLI is missing (node_modules/.bin/cdk); run `make setup`")
    return str(local)


def run_cdk(label: str, args: Sequence[str], env: dict[str, str], *, cwd: Path, capture: bool = True) -> str:
    """Run the CDK CLI; print one status line; on failure show its last lines and raise Failure."""
    command = [cdk_binary(), *args]
    started = time.monotonic()
    print(f"==> {label} ...", flush=True)
    # Captured runs get their own session, so a stop reaches the whole tree; interactive ones (--target aws)
    # stay in the terminal's foreground group, where CDK can prompt.
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=capture, text=True,
                               stdin=None if not capture else subprocess.DEVNULL,
                               stdout=subprocess.PIPE if capture else None,
                               stderr=subprocess.STDOUT if capture else None)
    _children.append(process)
    try:
        output, _ = process.communicate(timeout=CDK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise Failure(f"{label} did not finish within {CDK_TIMEOUT_S} s") from None
    finally:
        _stop(process)
        _children.remove(process)
    elapsed = time.monotonic() - started
    output = output or ""
    if process.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        print("\n".join(f"    | {line}" for line in lines[-25:]), file=sys.stderr)
        reason = next((line.strip() for line in reversed(lines) if "❌" in line or "Error" in line), "see above")
        raise Failure(f"{label} failed (exit {process.returncode}): {reason}")
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
                             "security_groups": [], "keys": [], "buckets": []}

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
    ec2, autoscaling, kms = client("ec2"), client("autoscaling"), client("kms")
    left = []
    asgs = {g["AutoScalingGroupName"] for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}
    templates = {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    for stack, found in facts.items():
        left += [f"{stack}: Auto Scaling group {n}" for n in found["asgs"] if n in asgs]
        left += [f"{stack}: launch template {t}" for t in found["launch_templates"] if t in templates]
        left += [f"{stack}: security group {g}" for g in found["security_groups"] if g in groups]
        for key_id in found["keys"]:
            try:
                state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
            except kms.exceptions.NotFoundException:
                continue
            if state not in ("PendingDeletion", "Disabled"):
                left.append(f"{stack}: KMS key {key_id} ({state})")
    return left


def stack_gone(cfn, stack: str) -> str:
    """The status of the newest stack named ``stack`` (ListStacks keeps deleted stacks as DELETE_COMPLETE)."""
    summaries = [s for page in cfn.get_paginator("list_stacks").paginate() for s in page["StackSummaries"]
                 if s["StackName"] == stack]
    if not summaries:
        return "NOT FOUND"
    return max(summaries, key=lambda s: s["CreationTime"])["StackStatus"]


# --------------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------------

def run_emulator(region: str) -> None:
    import moto

    port = free_port()
    endpoint = f"http://localhost:{port}"  # moto recognises only localhost in S3 TemplateURLs
    env = emulator_environment(endpoint, region)
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(variable, None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    work = Path(tempfile.mkdtemp(prefix="mlcdk-emulator-"))
    outdir = work / "cdk.out"
    server_env = dict(env, MOTO_PORT=str(port))
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-moto", str(port)],
                              env=server_env, cwd=work, start_new_session=True,
                              stdout=open(work / "moto.log", "w"), stderr=subprocess.STDOUT)
    print(f"==> moto {moto.__version__} server on {endpoint} (pid {server.pid}, log {work / 'moto.log'})")
    print("    with fixes for moto gaps:")
    for fix in MOTO_FIXES:
        print(f"    - {fix}")
    succeeded = False
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)
        # Lambda functions (CDK's custom-resource providers) are stored but never run: no Docker here.
        moto_post(f"http://127.0.0.1:{port}", "/moto-api/config", {"lambda": {"use_docker": False}})
        client = clients(endpoint, region)
        # Bootstrap from an empty directory: no cdk.json there, so the CLI does not synthesize the app first.
        run_cdk(f"cdk bootstrap aws://{ACCOUNT}/{region}",
                ["bootstrap", f"aws://{ACCOUNT}/{region}", "--no-notices"], env, cwd=work)
        context = dict(EMULATOR_CONTEXT, region=region, account=ACCOUNT)
        flags = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
        run_cdk("cdk deploy " + " ".join(STACKS),
                ["deploy", *STACKS, "--require-approval", "never", "--no-notices", *flags, "--output", str(outdir)],
                env, cwd=ROOT)
        facts = {}
        for stack in STACKS:
            template = json.loads((outdir / f"{stack}.template.json").read_text())
            facts[stack] = describe_stack(client, stack, template)
        failed = [f"{s} is {f['status']}" for s, f in facts.items() if f["status"] != "CREATE_COMPLETE"]
        if failed:
            raise Failure("deploy did not complete: " + "; ".join(failed))

        print()
        teardown(client, env, outdir, f"http://127.0.0.1:{port}", facts)
        succeeded = True
    finally:
        for child in list(_children):
            _stop(child)
        _stop(server)
        print(f"==> moto server stopped (pid {server.pid}, exit {server.returncode})")
        if succeeded:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"    kept for inspection: {work} (moto.log, cdk.out)")


def teardown(client, env: dict[str, str], outdir: Path, server_url: str, facts: dict[str, dict]) -> None:
    cfn = client("cloudformation")
    try:
        # The synthesized assembly is the app: no second synth, and exactly the stacks that were deployed.
        run_cdk("cdk destroy " + " ".join(STACKS),
                ["destroy", *STACKS, "--force", "--no-notices", "--app", str(outdir)], env, cwd=ROOT)
        states = {stack: stack_gone(cfn, stack) for stack in STACKS}
        for stack, state in states.items():
            print(f"    {stack}: {state}")
        if any(state != "DELETE_COMPLETE" for state in states.values()):
            raise Failure("stacks not deleted: " + ", ".join(f"{s} {v}" for s, v in states.items()))
        left = leftovers(client, facts)
        if left:
            raise Failure("left behind after cdk destroy: " + "; ".join(left))
        print("    left behind: nothing (no Auto Scaling group, launch template or security group of either stack; "
              "their KMS keys are gone or pending deletion)")
        cfn.delete_stack(StackName="CDKToolkit")
        print(f"    CDKToolkit: {stack_gone(cfn, 'CDKToolkit')}")
        print("    teardown: cdk destroy")
    except Failure as error:
        print(f"    {error}", file=sys.stderr)
        print("    teardown: FALLBACK to POST /moto-api/reset (moto could not delete the stacks cleanly)")
        moto_post(server_url, "/moto-api/reset")
        remaining = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
        print(f"    after reset: {len(remaining)} stack(s) in the emulator")


def run_aws(region: str | None) -> None:
    """Deploy both stacks to the account of the user's credentials, after a typed confirmation (no emulator)."""
    import boto3
    import botocore.exceptions

    if not sys.stdin.isatty():
        raise Failure("--target aws needs an interactive terminal to confirm the account; refusing")
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if session.get_credentials() is None:
        raise Failure("--target aws: no AWS credentials found (set AWS_PROFILE or run `aws configure`)")
    region = region or session.region_name
    if not region:
        raise Failure("--target aws: no region; pass --region or set AWS_REGION")
    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise Failure(f"--target aws: could not identify the account: {error}") from None
    account = identity["Account"]
    print(f"This deploys {', '.join(STACKS)} to the REAL account {account} ({identity['Arn']}) in {region}.")
    print("Accelerated instances cost real money (the stacks' EstimatedMonthlyCostUsd outputs show the estimate).")
    answer = input(f"Type the account id {account} to continue: ").strip()
    if answer != account:
        raise Failure("not confirmed; nothing was deployed")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
    run_cdk(f"cdk bootstrap aws://{account}/{region}", ["bootstrap", f"aws://{account}/{region}"], env,
            cwd=ROOT, capture=False)
    run_cdk("cdk deploy " + " ".join(STACKS),
            ["deploy", *STACKS, "-c", f"region={region}", "-c", f"account={account}"], env, cwd=ROOT, capture=False)
    print(f"Deployed. Remove with: npx cdk destroy {' '.join(STACKS)} -c region={region} -c account={account}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                        help="emulator (default): a local moto server; aws: your account, after confirmation")
    parser.add_argument("--region", default=None, help=f"deploy region (emulator default: {DEFAULT_REGION})")
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(args.serve_moto)
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
    except Exception as error:  # an unexpected boto3/moto answer: still one line, with its type
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"Total wall time: {time.monotonic() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
