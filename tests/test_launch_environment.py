"""mlcdk.launch checks its environment as strictly as the constructs check their parameters (issue #25).

Bounded integers, addresses that are real unicast IPs or host names, nothing that torchrun could read as an
option, a Slurm host list read without a backtracking regular expression; every refusal is one line and exit 2.
Hypothesis then feeds arbitrary environments: plan() returns a bounded plan or raises LaunchError, nothing else.
"""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcdk import launch
from mlcdk.presets import catalog
from tests.test_launch import clean_env, run_launcher

WORKER = {"AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1"}
SLURM_WORKER = {"SLURM_NNODES": "2", "SLURM_NODEID": "1"}
HUGE_INDEX = "1" * 5000  # int() of it raises ValueError on Python's integer-string limit (4,300 digits)

BAD = [
    # (id, environment, arguments, what the one line must say)
    ("node-count-1e30", {"AWS_BATCH_JOB_NUM_NODES": str(10**30), "AWS_BATCH_JOB_NODE_INDEX": "0"}, ["--", "true"],
     ["AWS_BATCH_JOB_NUM_NODES='1000000000000000000000000000000' is not an integer from 1 to 10000"]),
    ("index-of-5000-digits", {**WORKER, "AWS_BATCH_JOB_NODE_INDEX": HUGE_INDEX}, ["--", "true"],
     ["AWS_BATCH_JOB_NODE_INDEX='111111111111", "... (5,000 characters) is not an integer from 0 to 1"]),
    ("slurm-count-of-5000-digits", {"SLURM_NNODES": HUGE_INDEX, "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "n1"},
     ["--", "true"], ["SLURM_NNODES='1111", "(5,000 characters) is not an integer from 1 to 10000"]),
    ("unicode-digits", {**WORKER, "AWS_BATCH_JOB_NODE_INDEX": "\u0661"}, ["--", "true"],
     ["AWS_BATCH_JOB_NODE_INDEX='\u0661' is not an integer"]),
    ("nproc-huge", {"MLCDK_NPROC_PER_NODE": "1000000"}, ["--", "true"],
     ["MLCDK_NPROC_PER_NODE='1000000' is not an integer from 1 to 1024"]),
    ("worker-main-is-0.0.0.0", {**WORKER, launch.MAIN_ADDRESS: "0.0.0.0"}, ["--", "true"],
     [f"{launch.MAIN_ADDRESS}='0.0.0.0' is not a unicast address of a node"]),
    ("worker-main-is-loopback", {**WORKER, launch.MAIN_ADDRESS: "127.0.0.1"}, ["--", "true"],
     [f"{launch.MAIN_ADDRESS}='127.0.0.1' is loopback: a worker node must reach the main node"]),
    ("worker-main-is-link-local", {**WORKER, launch.MAIN_ADDRESS: "169.254.169.254"}, ["--", "true"],
     ["'169.254.169.254' is not a unicast address of a node"]),
    ("worker-main-is-multicast", {**WORKER, launch.MAIN_ADDRESS: "224.0.0.1"}, ["--", "true"],
     ["'224.0.0.1' is not a unicast address of a node"]),
    ("worker-main-is-broadcast", {**WORKER, launch.MAIN_ADDRESS: "255.255.255.255"}, ["--", "true"],
     ["'255.255.255.255' is not a unicast address of a node"]),
    ("worker-main-is-a-host-name", {**WORKER, launch.MAIN_ADDRESS: "--master-addr"}, ["--", "true"],
     [f"{launch.MAIN_ADDRESS}='--master-addr' is not an IPv4 address"]),
    ("slurm-list-begins-with-dashes", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "--nnodes=64,n2"}, ["--", "true"],
     ["SLURM_JOB_NODELIST='--nnodes=64,n2' is not a Slurm hostlist: '=' at 8"]),
    ("slurm-host-begins-with-dash", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "-n[1-2]"}, ["--", "true"],
     ["SLURM_JOB_NODELIST: its first host '-n1' is not a host name"]),
    ("slurm-40-characters-ending-in-bracket", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "a" * 39 + "["},
     ["--", "true"], ["is not a Slurm hostlist: a '[' at 39 is not closed"]),
    ("slurm-nested-bracket", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "n[1-[2]]"}, ["--", "true"],
     ["a '[' at 1 is not closed"]),
    ("slurm-range-backwards", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "n[09-03]"}, ["--", "true"],
     ["the range 09-03 runs backwards"]),
    ("slurm-empty-entry", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "n1,,n2"}, ["--", "true"], ["an empty entry"]),
    ("slurm-worker-main-is-localhost", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "localhost,n2"}, ["--", "true"],
     ["the first host of SLURM_JOB_NODELIST='localhost' is loopback"]),
    ("command-is-an-option", {}, ["--", "--nnodes=64", "train.py"],
     ["COMMAND begins with '--nnodes=64', which torchrun would read as its own option"]),
    ("long-value-is-cut", {"MLCDK_ACCELERATOR": "x" * 100_000}, ["--", "true"],
     ["MLCDK_ACCELERATOR='xxxxxxxx", "... (100,000 characters) is not gpu, neuron, other or none"]),
    ("newline-in-an-argument-stays-on-one-line", {}, ["--bad\noption", "--", "true"],
     ["unrecognized arguments: --bad\\noption"]),
]


@pytest.mark.parametrize(("environment", "args", "says"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_environment_is_one_bounded_line_and_exit_2(environment, args, says):
    result = run_launcher(args, clean_env(**environment))
    assert result.returncode == 2, result
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcdk.launch: error: "), result.stderr
    assert len(lines[0]) < 400, "an error shows a bounded part of the value"
    for fragment in says:
        assert fragment in lines[0]


GOOD = [
    # (id, environment, master address, node count, rank)
    ("slurm-main-may-be-localhost", {"SLURM_NNODES": "2", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "localhost,n2"},
     "localhost", "2", "0"),
    ("slurm-ip-address-host", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "10.0.3.4,10.0.3.5"}, "10.0.3.4", "2", "1"),
    ("slurm-zero-padded-range", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "gpu-[0007-0010]"}, "gpu-0007", "2", "1"),
    ("slurm-fqdn-and-underscore", {**SLURM_WORKER, "SLURM_JOB_NODELIST": "p5_a[3,5].cluster.internal"},
     "p5_a3.cluster.internal", "2", "1"),
    ("batch-largest-count", {"AWS_BATCH_JOB_NUM_NODES": "10000", "AWS_BATCH_JOB_NODE_INDEX": "9999",
                             launch.MAIN_ADDRESS: "10.0.0.7"}, "10.0.0.7", "10000", "9999"),
    ("batch-private-address-of-another-range", {**WORKER, launch.MAIN_ADDRESS: "100.64.1.9"}, "100.64.1.9", "2", "1"),
]


@pytest.mark.parametrize(("environment", "master", "nnodes", "rank"), [row[1:] for row in GOOD],
                         ids=[row[0] for row in GOOD])
def test_good_environment(environment, master, nnodes, rank):
    command = launch.plan({"PATH": "", **environment}, ["--", "true"], own_address=lambda: "10.9.9.9").command
    at = command.index("--nnodes")
    assert command[at:at + 8] == ["--nnodes", nnodes, "--node-rank", rank, "--nproc-per-node", "1",
                                  "--master-addr", master]


def test_nproc_bound_is_above_every_catalog_type():
    largest = max(spec.vcpus for spec in catalog.default_catalog())
    assert launch.MAX_NPROC_PER_NODE >= largest, largest


# --------------------------------------------------------------------------------------------
# Properties: any environment gives a bounded plan or a LaunchError, and nothing hangs
# --------------------------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(min_value=-5, max_value=20_000).map(str), st.text("0123456789", max_size=40),
                    st.sampled_from(["", " 1", "1 ", "+1", "0x1", "1e3", "\u0661", HUGE_INDEX, str(10**30)]))
ADDRESSES = st.one_of(st.ip_addresses(v=4).map(str), st.text(max_size=20),
                      st.sampled_from(["", "0.0.0.0", "127.0.0.1", "localhost", "--x", "10.0.0", "010.0.0.1"]))
HOSTLISTS = st.one_of(st.text(alphabet="ab-[],0129.", max_size=60), st.text(max_size=30),
                      st.sampled_from(["n[01-04,07]", "a" * 39 + "[", "--nnodes=4", "n[1-" * 50]))
ENVIRONMENTS = st.fixed_dictionaries({}, optional={
    "AWS_BATCH_JOB_NUM_NODES": NUMBERS, "AWS_BATCH_JOB_NODE_INDEX": NUMBERS, "AWS_BATCH_JOB_MAIN_NODE_INDEX": NUMBERS,
    launch.MAIN_ADDRESS: ADDRESSES, "SLURM_NNODES": NUMBERS, "SLURM_NODEID": NUMBERS, "SLURM_JOB_NODELIST": HOSTLISTS,
    "MLCDK_NPROC_PER_NODE": NUMBERS, "MLCDK_MASTER_PORT": NUMBERS, "MLCDK_EFA": st.sampled_from(["0", "1", "2", ""]),
    "MLCDK_ACCELERATOR": st.sampled_from(["gpu", "neuron", "none", "tpu", ""])})
COMMANDS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environment=ENVIRONMENTS, command=COMMANDS)
def test_any_environment_gives_a_bounded_plan_or_a_launch_error(environment, command):
    try:
        result = launch.plan({"PATH": "", **environment}, ["--", *command], own_address=lambda: "10.9.9.9")
    except launch.LaunchError as error:
        assert "\n" not in launch.one_line(str(error))
        return
    args = result.command[result.command.index("--nnodes"):]
    nnodes, rank, nproc, master, port = args[1], args[3], args[5], args[7], args[9]
    assert 1 <= int(nnodes) <= launch.MAX_NODES and 0 <= int(rank) < int(nnodes)
    assert 1 <= int(nproc) <= launch.MAX_NPROC_PER_NODE and 1 <= int(port) <= 65535
    assert master and not master.startswith("-") and master != "0.0.0.0"
    if int(rank) != 0:
        assert master not in ("127.0.0.1", "localhost")
    assert not args[args.index("--no-python") + 1].startswith("-")


ADVERSARIAL = {
    "unclosed brackets": "n[1-" * 25_000,
    "many ranges": "n[" + ",".join(["1-2"] * 25_000) + "]",
    "almost a host list": "a" * 99_999 + "[",
    "many entries": ",".join(["node1"] * 16_600) + ",",
    "many digits": "n[" + "9" * 99_990 + "]",
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL)
def test_no_host_list_of_100_kb_takes_long(text):
    assert len(text) >= 99_000
    start = time.perf_counter()
    try:
        launch.first_host(text)
    except launch.LaunchError:
        pass
    assert time.perf_counter() - start < 0.5
