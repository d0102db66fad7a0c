"""``mlcdk check``: the acceptance test to run first on a deployed cluster (library; the CLI only formats).

It submits one job to the cluster's queue that runs :mod:`mlcdk.allreduce` on every node through the launcher
(mlcdk.launch, then torchrun): NCCL on NVIDIA, Neuron collectives on Trainium, gloo on CPU. The script travels
in the submission (MLCDK_CHECK, beside the launcher's MLCDK_LAUNCHER), so the image is not rebuilt. Each node
prints its bus bandwidth; :func:`run` reads the nodes' CloudWatch logs and judges them against the node's
network figure from the catalog: the sum of its network cards' baseline bandwidth, in GB/s (Gbit/s / 8).

Threshold (:func:`expectation`), for two nodes or more: the bus bandwidth must reach EFA_SHARE of the network
figure on a cluster that uses EFA, TCP_SHARE without EFA. A collective that silently fell back from EFA to TCP
sockets runs at a few percent of the EFA figure, so a quarter separates the two with a wide margin; without EFA
the check only asks that the path carries real traffic. One node sends nothing over the network: its figure is
shown, and no threshold applies. A failure is named by :func:`diagnose` from the job's status reason, the
containers' exit codes and the nodes' logs (CAUSES).
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcdk import allreduce, launch
from mlcdk.presets import catalog

CHECK_ENV = "MLCDK_CHECK"
#: Decodes the check script from MLCDK_CHECK and runs it as __main__ (``python3 -c BOOT args...``).
BOOT = ("import os,zlib,base64;exec(compile(zlib.decompress(base64.b64decode(os.environ['MLCDK_CHECK'])),"
        "'mlcdk/allreduce.py','exec'),{'__name__':'__main__'})")
EFA_SHARE = 0.25
TCP_SHARE = 0.05
FINISHED = ("SUCCEEDED", "FAILED")
#: Polling the job: after 1 s, doubling to every 30 s (a job waits minutes for its instances).
POLL_SECONDS = (1.0, 30.0)


def encoded_script() -> str:
    """mlcdk/allreduce.py, zlib-compressed and base64-encoded, for the MLCDK_CHECK variable."""
    return base64.b64encode(zlib.compress(Path(allreduce.__file__).read_bytes(), 9)).decode("ascii")


@dataclass(frozen=True)
class ClusterFacts:
    """What the cluster's job definition says about the nodes (the environment mlcdk writes into it)."""

    instance_type: str
    accelerator: str
    efa: bool
    multi_node: bool


def cluster_facts(definition: Mapping[str, Any]) -> ClusterFacts:
    """From a DescribeJobDefinitions entry of an mlcdk cluster."""
    ranges = definition.get("nodeProperties", {}).get("nodeRangeProperties", [])
    container = ranges[0].get("container", {}) if ranges else definition.get("containerProperties", {})
    env = {item["name"]: item["value"] for item in container.get("environment", [])}
    if "MLCDK_INSTANCE_TYPE" not in env:
        raise ValueError(f"job definition {definition.get('jobDefinitionArn')} is not an mlcdk cluster's: its "
                         "container has no MLCDK_INSTANCE_TYPE")
    return ClusterFacts(env["MLCDK_INSTANCE_TYPE"], env.get("MLCDK_ACCELERATOR", "none"), env.get("MLCDK_EFA") == "1",
                        definition.get("type") == "multinode")


@dataclass(frozen=True)
class Expectation:
    """What the network allows and what the check asks, in GB/s (10^9 bytes a second)."""

    network_gbytes: float | None  #: the nodes' network figure (None: the catalog has none)
    minimum_gbytes: float | None  #: the threshold (None: one node, or no figure)
    why: str


def network_gbytes(instance_type: str) -> float | None:
    """The sum of the type's network cards' baseline bandwidth (DescribeInstanceTypes), in GB/s."""
    spec = catalog.get(instance_type)
    gbits = sum(card.baseline_bandwidth_gbps or 0 for card in spec.network_cards)
    return gbits / 8 if gbits else None


def expectation(facts: ClusterFacts, nodes: int) -> Expectation:
    figure = network_gbytes(facts.instance_type)
    if figure is None:
        return Expectation(None, None, f"the catalog has no network figure for {facts.instance_type}")
    if nodes < 2:
        return Expectation(figure, None, "one node sends nothing over the network: no threshold")
    share = EFA_SHARE if facts.efa else TCP_SHARE
    path = "EFA" if facts.efa else "TCP (no EFA)"
    return Expectation(figure, round(figure * share, 3),
                       f"{share:.0%} of {figure:g} GB/s ({facts.instance_type}'s network figure) over {path}")


@dataclass(frozen=True)
class Options:
    """How the check runs: nodes (None: the cluster's maximum), bytes per all-reduce, timed iterations, and how
    long to wait for the job (including the wait for capacity) before cancelling it."""

    nodes: int | None = None
    size_bytes: int | None = None  #: default: 256 MiB with an accelerator, 32 MiB on CPU
    iterations: int = 20
    warmup: int = 5
    timeout_minutes: float = 60
    rendezvous_timeout_s: int = 600


def script_arguments(facts: ClusterFacts, expected: Expectation, options: Options) -> list[str]:
    size = options.size_bytes or (256 * 2**20 if facts.accelerator in ("gpu", "neuron") else 32 * 2**20)
    args = ["--bytes", str(size), "--iterations", str(options.iterations), "--warmup", str(options.warmup),
            "--timeout", str(options.rendezvous_timeout_s)]
    if expected.minimum_gbytes is not None:
        args += ["--min-busbw-gbytes", f"{expected.minimum_gbytes:g}"]
    return args


def submission(facts: ClusterFacts, nodes: int, expected: Expectation, options: Options) -> dict[str, Any]:
    """The SubmitJob overrides: the launcher runs the check script, which the environment carries."""
    run = {"command": launch.inline_command(["--rendezvous-timeout", str(options.rendezvous_timeout_s), "--",
                                             "python3", "-c", BOOT, *script_arguments(facts, expected, options)]),
           "environment": [{"name": CHECK_ENV, "value": encoded_script()}]}
    if not facts.multi_node:
        return {"containerOverrides": run}
    return {"nodeOverrides": {"numNodes": nodes, "nodePropertyOverrides": [
        {"targetNodes": "0:", "containerOverrides": run}]}}


# --------------------------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeResult:
    node: int
    busbw_gbytes: float
    algbw_gbytes: float
    seconds: float
    size_bytes: int
    ranks: int
    backend: str


@dataclass(frozen=True)
class StageFailure:
    node: int
    stage: str
    error: str


_LINE = re.compile(rf"(?:^|\s)({allreduce.MARK}|{allreduce.FAILED}) (\{{.*\}})\s*$")


def parse(text: str) -> tuple[list[NodeResult], list[StageFailure]]:
    """The check script's result and failure lines in a log."""
    results, failures = [], []
    for line in text.splitlines():
        found = _LINE.search(line)
        if found is None:
            continue
        try:
            fields = json.loads(found.group(2))
            if found.group(1) == allreduce.MARK:
                results.append(NodeResult(int(fields["node"]), float(fields["busbw_gbytes"]),
                                          float(fields["algbw_gbytes"]), float(fields["seconds"]),
                                          int(fields["bytes"]), int(fields["ranks"]), str(fields["backend"])))
            else:
                failures.append(StageFailure(int(fields["node"]), str(fields["stage"]), str(fields["error"])))
        except (ValueError, KeyError, TypeError):
            continue  # not ours, or cut short
    return results, failures


@dataclass(frozen=True)
class Cause:
    """The likely cause of a failed check, and what to do about it."""

    name: str
    summary: str
    advice: str


#: (name, pattern searched in the status reasons and the logs, summary, advice), first match wins.
CAUSES: tuple[tuple[str, str, str, str], ...] = (
    ("capacity", r"CAPACITY:|InsufficientInstanceCapacity|Insufficient capacity",
     "EC2 had no capacity for the instance type in the cluster's AZ",
     "retry later, pin another AZ that offers the type, or launch into a capacity reservation (README 'Getting "
     "capacity'); `mlcdk preflight` checks quotas and offerings"),
    ("misconfiguration", r"MISCONFIGURATION:",
     "AWS Batch cannot place the job on the compute environment",
     "read the status reason: the job asks for more vCPUs, memory or GPUs than the compute environment offers, or "
     "the service role lacks a permission"),
    ("image", r"CannotPullContainer|pull access denied|manifest unknown",
     "the nodes could not pull the job's image",
     "the nodes reach public.ecr.aws through the VPC's NAT gateway: check the route, and that the image exists"),
    ("shared storage", r"is not a mount point|exit code 3\b",
     "the shared file system was not mounted on a node (the launcher refused, exit code 3)",
     "read the node's boot log (/var/log/cloud-init-output.log) for the FSx mount; the node should not have "
     "joined ECS"),
    ("launcher", r"mlcdk\.launch: error:",
     "the launcher refused the job's environment",
     "read the launcher's error line in the node's log"),
    ("EFA device", r"fi_getinfo|NET/OFI.*(?:fail|error|Unable)|/dev/infiniband|No EFA|efa.*No such device",
     "collectives could not open an EFA device",
     "the job definition must map every /dev/infiniband/uverbsN and the node must have its EFA interfaces and "
     "driver; check the node's EFA installer log"),
    ("Neuron device", r"nrt_init|NRT:.*(?:fail|error)|/dev/neuron|Neuron runtime.*fail",
     "the Neuron runtime could not open its devices",
     "the job definition must map every /dev/neuronN and the host needs the Neuron driver (the ECS Neuron AMI)"),
    ("rendezvous", r"RendezvousTimeoutError|DistStoreError|DistNetworkError|TCPStore|while trying to connect to|"
                   r"Timed out after \d+ seconds waiting|"
                   r"rendezvous.*(?:timed out|failed)|Connection refused|ncclRemoteError|Socket Timeout|"
                   r"Connect to .* failed",
     "the nodes could not reach each other: the rendezvous or the collectives' sockets failed",
     "the security group on the job's network interfaces (awsvpc) must allow all traffic between the job's "
     "containers; check the compute environment's security groups and the VPC's network ACLs"),
    ("host", r"Host EC2|instance.*terminated",
     "a node's instance stopped under the job",
     "a spot reclaim, a failed health check or a scale-in; `mlcdk jobs` shows the reason, then run the check again"),
    ("timeout", r"Job attempt duration exceeded timeout|timed out waiting for the job",
     "the job did not finish in time",
     "it may still be waiting for capacity (`mlcdk jobs`), or hung in a collective: read the nodes' logs"),
)


def diagnose(texts: Sequence[str]) -> Cause | None:
    """The first CAUSES entry whose pattern appears in ``texts`` (status reasons first, then the logs)."""
    for name, pattern, summary, advice in CAUSES:
        if any(re.search(pattern, text) for text in texts if text):
            return Cause(name, summary, advice)
    return None


# --------------------------------------------------------------------------------------------
# Running it on a cluster: found as the job commands find it (mlcdk.aws.jobs.clusters.Connection)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A finished check: the job, each node's result beside the expectation, and the verdict."""

    job_id: str
    status: str
    status_reason: str
    facts: ClusterFacts
    nodes: int
    expected: Expectation
    results: tuple[NodeResult, ...]
    failures: tuple[StageFailure, ...]
    cause: Cause | None
    passed: bool
    notes: tuple[str, ...] = field(default=())


def _wait(connection: Any, job_id: str, options: Options, sleep: Callable[[float], None],
          clock: Callable[[], float]) -> dict[str, Any]:
    """The job's description once it has finished; cancelled (and returned as FAILED) after the timeout."""
    deadline, pause = clock() + options.timeout_minutes * 60, POLL_SECONDS[0]
    while True:
        job = connection.batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in FINISHED:
            return job
        if clock() >= deadline:
            reason = f"timed out waiting for the job after {options.timeout_minutes:g} minutes ({job['status']}" + (
                f": {job['statusReason']})" if job.get("statusReason") else ")")
            connection.batch.terminate_job(jobId=job_id, reason="mlcdk check: " + reason)
            return {**job, "status": "FAILED", "statusReason": reason}
        sleep(pause)
        pause = min(pause * 2, POLL_SECONDS[1])


def _node_logs(connection: Any, job: Mapping[str, Any], nodes: int) -> tuple[list[str], list[str]]:
    """Each node's log text, and the texts that explain a failure: status reasons and container exit codes."""
    from mlcdk.aws.jobs import follow

    logs, reasons = [], [job.get("statusReason", "")]
    for node in range(nodes):
        container = follow.container_details(follow.node_job(connection, dict(job), node))
        reasons.append(container.get("reason", ""))
        if container.get("exitCode") not in (None, 0):
            reasons.append(f"exit code {container['exitCode']}")
        stream = container.get("logStreamName")
        lines = follow.read_events(connection.client("logs"), connection.cluster.log_group, stream, None)[1] \
            if stream else []
        logs.append("\n".join(lines))
    return logs, reasons


def judge(job: Mapping[str, Any], facts: ClusterFacts, nodes: int, expected: Expectation, logs: Sequence[str],
          reasons: Sequence[str]) -> Report:
    """The verdict: every node reported, none below the threshold, and the job succeeded."""
    results, failures = parse("\n".join(logs))
    low = [r for r in results if expected.minimum_gbytes is not None and r.busbw_gbytes < expected.minimum_gbytes]
    reported = {r.node for r in results}
    passed = job["status"] == "SUCCEEDED" and not failures and not low and reported == set(range(nodes))
    notes = []
    cause = None
    if low:
        advice = ("collectives may have fallen back from EFA to TCP sockets: check that the job maps every "
                  "/dev/infiniband/uverbsN and that NCCL_DEBUG=INFO (or the Neuron runtime's log) names the efa "
                  "provider" if facts.efa else
                  "the path between the nodes carries less than expected: other work on the nodes, or a slow "
                  "link; for multi-node training choose a type with EFA (`mlcdk catalog list`)")
        cause = Cause("bandwidth", f"bus bandwidth below {expected.minimum_gbytes:g} GB/s on node(s) "
                                   + ", ".join(str(r.node) for r in low), advice)
    elif not passed:
        cause = diagnose([*reasons, *(f.error for f in failures), *logs])
    if job["status"] == "SUCCEEDED" and not results and not failures:
        notes.append("the job succeeded but no node printed a result: its containers did not run the check (a "
                     "local emulator such as moto marks Batch jobs SUCCEEDED without running them)")
    return Report(job["jobId"], job["status"], job.get("statusReason", ""), facts, nodes, expected,
                  tuple(sorted(results, key=lambda r: r.node)), tuple(failures), cause, passed, tuple(notes))


def run(connection: Any, options: Options = Options(), *, sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic, name: str = "mlcdk-check") -> Report:
    """Submit the check to ``connection``'s cluster (a mlcdk.aws.jobs.clusters.Connection), wait for it, read every
    node's log and judge it. JobsError for what the user can fix (a node count, a cluster not made by mlcdk)."""
    from mlcdk.aws.jobs import JobsError

    cluster = connection.cluster
    found = connection.batch.describe_job_definitions(jobDefinitions=[cluster.definition])["jobDefinitions"]
    if not found:
        raise JobsError(f"cluster {cluster.name!r}: its job definition {cluster.definition} does not exist")
    try:
        facts = cluster_facts(found[0])
    except ValueError as error:
        raise JobsError(f"cluster {cluster.name!r}: {error}") from None
    nodes = cluster.max_nodes if options.nodes is None else options.nodes
    if not 1 <= nodes <= cluster.max_nodes:
        raise JobsError(f"--nodes {nodes} is out of range: 1 to {cluster.max_nodes} (cluster {cluster.name!r}'s limit)")
    nodes = nodes if facts.multi_node else 1
    expected = expectation(facts, nodes)
    job_id = connection.batch.submit_job(jobName=name, jobQueue=cluster.queue,
                                         jobDefinition=found[0]["jobDefinitionArn"],
                                         **submission(facts, nodes, expected, options))["jobId"]
    job = _wait(connection, job_id, options, sleep, clock)
    logs, reasons = _node_logs(connection, job, nodes)
    return judge(job, facts, nodes, expected, logs, reasons)
