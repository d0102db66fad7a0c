"""mlcdk.launch: the node facts of Batch and Slurm in, a torchrun command and its environment out."""
from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from mlcdk import launch

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "mlcdk" / "launch.py"
OWN = "10.1.2.3"  # what the main node "finds" as its own address in the plan() table


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory) -> str:
    """A PATH holding a stand-in torchrun, so the plan uses `torchrun`."""
    path = tmp_path_factory.mktemp("bin")
    (path / "torchrun").write_text("#!/bin/sh\nexit 0\n")
    (path / "torchrun").chmod(0o755)
    return str(path)


def torchrun(nnodes: str, rank: str, nproc: str, addr: str, port: str, *command: str) -> list[str]:
    return ["torchrun", "--nnodes", nnodes, "--node-rank", rank, "--nproc-per-node", nproc,
            "--master-addr", addr, "--master-port", port, "--no-python", *command]


BATCH_MAIN = {"AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_NUM_NODES": "4",
              "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0"}
BATCH_WORKER = {"AWS_BATCH_JOB_NODE_INDEX": "3", "AWS_BATCH_JOB_NUM_NODES": "4", "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
                "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.0.7"}
TRAIN = ["--", "python", "train.py", "--epochs", "3"]

PLANS = [
    # (id, environment, launcher arguments, command, added environment)
    ("batch-main", BATCH_MAIN, TRAIN,
     torchrun("4", "0", "1", OWN, "29500", "python", "train.py", "--epochs", "3"), {}),
    ("batch-main-index-defaults-to-0", {"AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_NUM_NODES": "2"},
     ["--", "true"], torchrun("2", "0", "1", OWN, "29500", "true"), {}),
    ("batch-worker", BATCH_WORKER, TRAIN,
     torchrun("4", "3", "1", "10.0.0.7", "29500", "python", "train.py", "--epochs", "3"), {}),
    ("batch-main-node-1-is-rank-0", {"AWS_BATCH_JOB_NODE_INDEX": "1", "AWS_BATCH_JOB_NUM_NODES": "3",
                                     "AWS_BATCH_JOB_MAIN_NODE_INDEX": "1"}, ["--", "true"],
     torchrun("3", "0", "1", OWN, "29500", "true"), {}),
    ("batch-node-0-under-main-node-1", {"AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_NUM_NODES": "3",
                                        "AWS_BATCH_JOB_MAIN_NODE_INDEX": "1",
                                        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.0.9"}, ["--", "true"],
     torchrun("3", "2", "1", "10.0.0.9", "29500", "true"), {}),
    ("batch-single-node", {"AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_NUM_NODES": "1"}, ["--", "true"],
     torchrun("1", "0", "1", OWN, "29500", "true"), {}),
    ("slurm-range-and-single", {"SLURM_NODEID": "2", "SLURM_NNODES": "5", "SLURM_JOB_NODELIST": "node[01-04,07]"},
     ["--", "true"], torchrun("5", "2", "1", "node01", "29500", "true"), {}),
    ("slurm-prefix-range-then-host", {"SLURM_NODEID": "3", "SLURM_NNODES": "4", "SLURM_JOB_NODELIST": "a-[1-3],b5"},
     ["--", "true"], torchrun("4", "3", "1", "a-1", "29500", "true"), {}),
    ("slurm-plain-host", {"SLURM_NODEID": "0", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "gpu-st-p4d-1"},
     ["--", "true"], torchrun("1", "0", "1", "gpu-st-p4d-1", "29500", "true"), {}),
    ("slurm-host-then-range", {"SLURM_NODEID": "1", "SLURM_NNODES": "4", "SLURM_JOB_NODELIST": "b5,a-[1-3]"},
     ["--", "true"], torchrun("4", "1", "1", "b5", "29500", "true"), {}),
    ("slurm-two-ranges", {"SLURM_NODEID": "1", "SLURM_NNODES": "4", "SLURM_JOB_NODELIST": "rack[2-3]-n[08-09]"},
     ["--", "true"], torchrun("4", "1", "1", "rack2-n08", "29500", "true"), {}),
    ("batch-wins-over-slurm", {**BATCH_WORKER, "SLURM_NODEID": "0", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "x1"},
     ["--", "true"], torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {}),
    ("no-engine", {}, ["--", "true"], torchrun("1", "0", "1", "127.0.0.1", "29500", "true"), {}),
    ("nproc-from-environment", {"MLCDK_NPROC_PER_NODE": "8"}, ["--", "true"],
     torchrun("1", "0", "8", "127.0.0.1", "29500", "true"), {}),
    ("nproc-flag-wins", {"MLCDK_NPROC_PER_NODE": "8"}, ["--nproc-per-node", "4", "--", "true"],
     torchrun("1", "0", "4", "127.0.0.1", "29500", "true"), {}),
    ("port-from-environment", {"MLCDK_MASTER_PORT": "31000"}, ["--", "true"],
     torchrun("1", "0", "1", "127.0.0.1", "31000", "true"), {}),
    ("port-flag-wins", {"MLCDK_MASTER_PORT": "31000"}, ["--master-port", "32000", "--", "true"],
     torchrun("1", "0", "1", "127.0.0.1", "32000", "true"), {}),
    ("dry-run-changes-nothing", BATCH_WORKER, ["--dry-run", "--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {}),
    ("efa-without-rdma", {**BATCH_WORKER, "MLCDK_EFA": "1"}, ["--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1"}),
    ("efa-with-rdma", {**BATCH_WORKER, "MLCDK_EFA": "1", "MLCDK_EFA_DEVICE_RDMA": "1"}, ["--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"),
     {"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1", "FI_EFA_USE_DEVICE_RDMA": "1"}),
    ("efa-off", {**BATCH_WORKER, "MLCDK_EFA": "0", "MLCDK_EFA_DEVICE_RDMA": "1"}, ["--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {}),
    ("user-variables-win", {**BATCH_WORKER, "MLCDK_EFA": "1", "MLCDK_EFA_DEVICE_RDMA": "1", "FI_PROVIDER": "tcp",
                            "FI_EFA_USE_DEVICE_RDMA": "0"}, ["--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {"FI_EFA_FORK_SAFE": "1"}),
    ("nvidia", {**BATCH_WORKER, "MLCDK_ACCELERATOR": "gpu"}, ["--", "true"],
     torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {"NCCL_SOCKET_IFNAME": "^lo,docker,ecs"}),
    ("nvidia-efa-rdma-p4d", {**BATCH_WORKER, "MLCDK_ACCELERATOR": "gpu", "MLCDK_EFA": "1",
                             "MLCDK_EFA_DEVICE_RDMA": "1", "MLCDK_NPROC_PER_NODE": "8"}, ["--", "true"],
     torchrun("4", "3", "8", "10.0.0.7", "29500", "true"),
     {"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1", "FI_EFA_USE_DEVICE_RDMA": "1",
      "NCCL_SOCKET_IFNAME": "^lo,docker,ecs"}),
    ("nvidia-user-interface-wins", {**BATCH_WORKER, "MLCDK_ACCELERATOR": "gpu", "NCCL_SOCKET_IFNAME": "eth0"},
     ["--", "true"], torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {}),
    ("neuron-worker", {**BATCH_WORKER, "MLCDK_ACCELERATOR": "neuron", "MLCDK_EFA": "1", "MLCDK_EFA_DEVICE_RDMA": "1",
                       "MLCDK_NPROC_PER_NODE": "32"}, ["--", "true"],
     torchrun("4", "3", "32", "10.0.0.7", "29500", "true"),
     {"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1", "FI_EFA_USE_DEVICE_RDMA": "1",
      "NEURON_RT_ROOT_COMM_ID": "10.0.0.7:29501", "CCOM_SOCKET_IFNAME": "eth0"}),
    ("neuron-main-own-port", {**BATCH_MAIN, "MLCDK_ACCELERATOR": "neuron", "MLCDK_MASTER_PORT": "41000"},
     ["--", "true"], torchrun("4", "0", "1", OWN, "41000", "true"),
     {"NEURON_RT_ROOT_COMM_ID": "10.1.2.3:41001", "CCOM_SOCKET_IFNAME": "eth0"}),
    ("neuron-user-root-wins", {**BATCH_WORKER, "MLCDK_ACCELERATOR": "neuron", "NEURON_RT_ROOT_COMM_ID": "h:1"},
     ["--", "true"], torchrun("4", "3", "1", "10.0.0.7", "29500", "true"), {"CCOM_SOCKET_IFNAME": "eth0"}),
    ("no-accelerator", {"MLCDK_ACCELERATOR": "none", "MLCDK_EFA": "0", "MLCDK_EFA_DEVICE_RDMA": "0"}, ["--", "true"],
     torchrun("1", "0", "1", "127.0.0.1", "29500", "true"), {}),
    ("other-accelerator", {"MLCDK_ACCELERATOR": "other"}, ["--", "true"],
     torchrun("1", "0", "1", "127.0.0.1", "29500", "true"), {}),
    ("cpu", {"MLCDK_ACCELERATOR": "cpu"}, ["--", "true"], torchrun("1", "0", "1", "127.0.0.1", "29500", "true"), {}),
]


#: The interfaces of an awsvpc task's network namespace, as the ECS agent names them: the task ENI "eth0" and the
#: veth "ecs-eth0" to the agent's bridge (amazon-ecs-agent agent/ecscni/types_linux.go), and loopback.
AWSVPC = ["lo", "eth0", "ecs-eth0"]
#: A persistent node's host network (engine="nodes"): Docker's bridge, the primary ENA interface, an EFA interface.
HOST = ["lo", "docker0", "ens5", "ens32"]


@pytest.mark.parametrize(("environment", "args", "command", "env"), [row[1:] for row in PLANS],
                         ids=[row[0] for row in PLANS])
def test_plan(bin_dir, environment, args, command, env):
    result = launch.plan({"PATH": bin_dir, **environment}, args, own_address=lambda: OWN, names=lambda: AWSVPC)
    assert result == launch.Plan(command, env)


def nccl_selects(rule: str, names: list[str]) -> list[str]:
    """NCCL_SOCKET_IFNAME as NCCL's docs define it ("Environment Variables"): a comma list of name prefixes; a
    leading "^" excludes them instead; "=" before a name matches it exactly."""
    exclude = rule.startswith("^")
    terms = rule.lstrip("^").split(",")

    def hit(name: str) -> bool:
        return any(name == t[1:] if t.startswith("=") else name.startswith(t) for t in terms)

    return [name for name in names if hit(name) != exclude]


def test_the_nccl_interface_rule_picks_the_task_eni_in_awsvpc_and_the_host_interfaces_elsewhere(bin_dir):
    rule = launch.plan({"PATH": bin_dir, "MLCDK_ACCELERATOR": "gpu"}, ["--", "true"],
                       names=lambda: AWSVPC).env["NCCL_SOCKET_IFNAME"]
    assert nccl_selects(rule, AWSVPC) == ["eth0"]
    assert nccl_selects(rule, HOST) == ["ens5", "ens32"]
    assert nccl_selects("=eth0", AWSVPC) == ["eth0"] and nccl_selects("eth", AWSVPC) == ["eth0"]  # the oracle itself


@pytest.mark.parametrize(("environment", "names", "ccom"), [
    ({"MLCDK_ACCELERATOR": "neuron"}, AWSVPC, "eth0"),  # both aws-neuron-samples Batch jobs set eth0
    ({"MLCDK_ACCELERATOR": "neuron"}, HOST, None),  # no eth0 on this host: the collectives choose
    ({"MLCDK_ACCELERATOR": "neuron", "CCOM_SOCKET_IFNAME": "ens5"}, AWSVPC, None),  # the user's value wins
    ({"MLCDK_ACCELERATOR": "gpu"}, AWSVPC, None),
    ({"MLCDK_ACCELERATOR": "none"}, AWSVPC, None),
])
def test_neuron_collectives_use_the_task_eni(bin_dir, environment, names, ccom):
    env = launch.plan({"PATH": bin_dir, **BATCH_WORKER, **environment}, ["--", "true"], names=lambda: names).env
    assert env.get("CCOM_SOCKET_IFNAME") == ccom


def test_interfaces_lists_this_machines_loopback():
    assert "lo" in launch.interfaces()


@pytest.mark.parametrize(("environment", "args", "timeout"), [
    ({}, ["--rendezvous-timeout", "30", "--", "true"], "timeout=30"),
    ({"MLCDK_RENDEZVOUS_TIMEOUT": "900"}, ["--", "true"], "timeout=900"),
    ({"MLCDK_RENDEZVOUS_TIMEOUT": "900"}, ["--rendezvous-timeout", "45", "--", "true"], "timeout=45"),
])
def test_rendezvous_timeout_goes_to_torchrun(bin_dir, environment, args, timeout):
    command = launch.plan({"PATH": bin_dir, **environment}, args, names=lambda: AWSVPC).command
    assert command[command.index("--rdzv-conf") + 1] == timeout
    assert command.index("--rdzv-conf") < command.index("--no-python")


def test_plan_without_torchrun_runs_the_module(tmp_path):
    result = launch.plan({"PATH": str(tmp_path)}, ["--", "true"])
    assert result.command == [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--node-rank", "0",
                              "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", "29500",
                              "--no-python", "true"]


def test_host_address_is_an_address_of_this_machine():
    with socket.socket() as server:  # binding proves the address is local; nothing is sent
        server.bind((launch.host_address(), 0))


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without scheduler or launcher variables, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_BATCH_", "SLURM_", "MLCDK_", "FI_",
                                                                      "NCCL_", "NEURON_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **variables}


def run_launcher(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlcdk.launch", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


W = {"AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1",
     "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.0.7"}
BAD = [
    # (id, environment, arguments, what the one line must say)
    ("index-not-below-count", {**W, "AWS_BATCH_JOB_NODE_INDEX": "2"}, ["--", "true"],
     ["AWS_BATCH_JOB_NODE_INDEX='2'", "AWS_BATCH_JOB_NUM_NODES=2"]),
    ("negative-index", {**W, "AWS_BATCH_JOB_NODE_INDEX": "-1"}, ["--", "true"], ["AWS_BATCH_JOB_NODE_INDEX='-1'"]),
    ("non-numeric-count", {**W, "AWS_BATCH_JOB_NUM_NODES": "two"}, ["--", "true"], ["AWS_BATCH_JOB_NUM_NODES='two'"]),
    ("zero-nodes", {**W, "AWS_BATCH_JOB_NUM_NODES": "0"}, ["--", "true"], ["AWS_BATCH_JOB_NUM_NODES='0'"]),
    ("index-missing", {"AWS_BATCH_JOB_NUM_NODES": "2"}, ["--", "true"], ["AWS_BATCH_JOB_NODE_INDEX is not set"]),
    ("main-index-out-of-range", {**W, "AWS_BATCH_JOB_MAIN_NODE_INDEX": "5"}, ["--", "true"],
     ["AWS_BATCH_JOB_MAIN_NODE_INDEX='5'"]),
    ("worker-without-main-address", {"AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1"}, ["--", "true"],
     ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set", "AWS_BATCH_JOB_NODE_INDEX=1"]),
    ("bad-main-address", {**W, "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.0"}, ["--", "true"],
     ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS='10.0.0'"]),
    ("open-bracket", {"SLURM_NODEID": "0", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "node[01-"}, ["--", "true"],
     ["SLURM_JOB_NODELIST='node[01-'"]),
    ("letters-in-range", {"SLURM_NODEID": "0", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "node[a-b]"},
     ["--", "true"], ["SLURM_JOB_NODELIST='node[a-b]'"]),
    ("empty-nodelist", {"SLURM_NODEID": "0", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": ""}, ["--", "true"],
     ["SLURM_JOB_NODELIST=''"]),
    ("slurm-node-id-too-big", {"SLURM_NODEID": "2", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "n[1-2]"},
     ["--", "true"], ["SLURM_NODEID='2'", "SLURM_NNODES=2"]),
    ("slurm-nodelist-missing", {"SLURM_NODEID": "0", "SLURM_NNODES": "2"}, ["--", "true"],
     ["SLURM_JOB_NODELIST is not set"]),
    ("nothing-after-dashes", {}, ["--"], ["missing COMMAND after '--'"]),
    ("no-dashes", {}, ["--dry-run"], ["missing COMMAND after '--'"]),
    ("nproc-flag-word", {}, ["--nproc-per-node", "zero", "--", "true"], ["--nproc-per-node='zero'"]),
    ("nproc-flag-zero", {}, ["--nproc-per-node", "0", "--", "true"], ["--nproc-per-node='0'"]),
    ("nproc-environment-negative", {"MLCDK_NPROC_PER_NODE": "-2"}, ["--", "true"], ["MLCDK_NPROC_PER_NODE='-2'"]),
    ("port-flag-too-big", {}, ["--master-port", "70000", "--", "true"], ["--master-port='70000'", "65535"]),
    ("port-flag-zero", {}, ["--master-port", "0", "--", "true"], ["--master-port='0'"]),
    ("port-environment-word", {"MLCDK_MASTER_PORT": "abc"}, ["--", "true"], ["MLCDK_MASTER_PORT='abc'"]),
    ("neuron-port-overflow", {"MLCDK_ACCELERATOR": "neuron"}, ["--master-port", "65535", "--", "true"],
     ["65535", "NEURON_RT_ROOT_COMM_ID"]),
    ("efa-not-a-flag", {"MLCDK_EFA": "yes"}, ["--", "true"], ["MLCDK_EFA='yes'"]),
    ("unknown-accelerator", {"MLCDK_ACCELERATOR": "tpu"}, ["--", "true"], ["MLCDK_ACCELERATOR='tpu'"]),
    ("rendezvous-timeout-zero", {}, ["--rendezvous-timeout", "0", "--", "true"], ["--rendezvous-timeout='0'"]),
    ("rendezvous-timeout-word", {"MLCDK_RENDEZVOUS_TIMEOUT": "soon"}, ["--", "true"],
     ["MLCDK_RENDEZVOUS_TIMEOUT='soon'"]),
    ("shared-storage-relative", {"MLCDK_SHARED_STORAGE": "fsx"}, ["--", "true"],
     ["MLCDK_SHARED_STORAGE='fsx' is not an absolute path"]),
    ("unknown-option", {}, ["--nodes", "2", "--", "true"], ["unrecognized arguments: --nodes 2"]),
    ("option-without-value", {}, ["--nproc-per-node"], ["argument --nproc-per-node: expected one argument"]),
]


@pytest.mark.parametrize(("environment", "args", "says"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_environment_is_one_line_and_exit_2(environment, args, says):
    result = run_launcher(args, clean_env(**environment))
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlcdk.launch: error: ")
    for fragment in says:
        assert fragment in lines[0]


def test_shared_storage_that_is_not_mounted_is_refused_with_exit_3(tmp_path):
    """A directory that exists but is no mount point: the node's FSx mount failed, checkpoints would be lost."""
    result = run_launcher(["--", "true"], clean_env(**W, MLCDK_SHARED_STORAGE=str(tmp_path)))
    assert result.returncode == 3, result
    assert result.stdout == ""
    assert result.stderr == (f"mlcdk.launch: error: shared storage MLCDK_SHARED_STORAGE={launch.shown(str(tmp_path))} "
                             "is not a mount point: the node's mount failed or the job lacks its volume; refusing to "
                             "write checkpoints to the container's disk\n")
    missing = run_launcher(["--dry-run", "--", "true"], clean_env(**W, MLCDK_SHARED_STORAGE=str(tmp_path / "fsx")))
    assert missing.returncode == 3 and "is not a mount point" in missing.stderr


def test_shared_storage_on_a_mount_point_passes():
    mounted = "/"  # a real mount point on every Linux machine (os.path.ismount("/") is always true)
    assert os.path.ismount(mounted)
    result = run_launcher(["--dry-run", "--", "true"], clean_env(**W, MLCDK_SHARED_STORAGE=mounted))
    assert result.returncode == 0, result.stderr
    assert after_launcher(json.loads(result.stdout)["command"])[-2:] == ["--no-python", "true"]
    launch.check_storage({}, is_mount=lambda path: False)  # not configured: nothing to check
    launch.check_storage({"MLCDK_SHARED_STORAGE": "/fsx"}, is_mount=lambda path: path == "/fsx")
    with pytest.raises(launch.NotMounted):
        launch.check_storage({"MLCDK_SHARED_STORAGE": "/fsx"}, is_mount=lambda path: False)
    assert launch.NotMounted.code == 3 and launch.LaunchError.code == 2


def test_dry_run_prints_one_json_object():
    env = clean_env(**W, MLCDK_NPROC_PER_NODE="8", MLCDK_ACCELERATOR="gpu", MLCDK_EFA="1")
    result = run_launcher(["--dry-run", "--master-port", "29600", "--", "python", "train.py", "--lr", "0.1"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "command": [*(["torchrun"] if shutil.which("torchrun", path=env["PATH"])
                      else [sys.executable, "-m", "torch.distributed.run"]),
                    "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "8", "--master-addr", "10.0.0.7",
                    "--master-port", "29600", "--no-python", "python", "train.py", "--lr", "0.1"],
        "env": {"FI_PROVIDER": "efa", "FI_EFA_FORK_SAFE": "1", "NCCL_SOCKET_IFNAME": "^lo,docker,ecs"},
    }
    assert result.stdout.count("\n") == 1


def after_launcher(command: list[str]) -> list[str]:
    """The torchrun arguments, without `torchrun` or `python -m torch.distributed.run` before them."""
    return command[command.index("--nnodes"):]


def test_inline_command_round_trip():
    """The job definition's way: the launcher's source in MLCDK_LAUNCHER, run by `python3 -c BOOT`."""
    env = clean_env(**W, MLCDK_EFA="1", MLCDK_LAUNCHER=launch.encoded_source())
    command = launch.inline_command(["--dry-run", "--", "python", "train.py"])
    assert command[:2] == ["python3", "-c"] and command[3:] == ["--dry-run", "--", "python", "train.py"]
    inline = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True, timeout=60)
    direct = run_launcher(["--dry-run", "--", "python", "train.py"], env)
    assert inline.returncode == direct.returncode == 0, (inline.stderr, direct.stderr)
    assert json.loads(inline.stdout) == json.loads(direct.stdout)
    assert after_launcher(json.loads(inline.stdout)["command"]) == [
        "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "1", "--master-addr", "10.0.0.7",
        "--master-port", "29500", "--no-python", "python", "train.py"]
    # errors too come out as the launcher's one line
    bad = subprocess.run(launch.inline_command(["--", "true"]), env={**env, "AWS_BATCH_JOB_NODE_INDEX": "9"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("mlcdk.launch: error: AWS_BATCH_JOB_NODE_INDEX='9'")


def test_encoded_source_is_this_module_without_docstrings_and_small():
    encoded = launch.encoded_source()
    assert encoded.isascii()
    expected = ast.parse(SOURCE.read_text())
    for node in ast.walk(expected):  # the module, less its docstrings (comments are not in an AST)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    decoded = zlib.decompress(base64.b64decode(encoded)).decode("utf-8")
    assert ast.dump(ast.parse(decoded)) == ast.dump(expected)
    assert '"""' not in decoded and "#:" not in decoded
    assert launch.LAUNCHER_ENV == "MLCDK_LAUNCHER"
    # A job definition, this variable included, may hold at most 24 KiB (Batch User Guide, "AWS Batch service
    # quotas": maximum job definition size); the launcher keeps half of it for everything else.
    assert len(encoded) < 12 * 1024, f"{len(encoded)} bytes: keep the launcher under 12 KiB encoded"


def test_launcher_imports_only_the_standard_library(tmp_path):
    imported = set()
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    # and it runs as a lone file in an interpreter without site-packages or the repository
    alone = tmp_path / "launch.py"
    shutil.copy(SOURCE, alone)
    result = subprocess.run([sys.executable, "-I", "-S", str(alone), "--dry-run", "--", "true"], cwd=tmp_path,
                            env=clean_env(**W), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert after_launcher(json.loads(result.stdout)["command"]) == [
        "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "1", "--master-addr", "10.0.0.7",
        "--master-port", "29500", "--no-python", "true"]
