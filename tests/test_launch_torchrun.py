"""A real two-node run: two launchers on this machine, with the environment AWS Batch gives each node, start
torchrun, whose four processes all-reduce on gloo (CPU). Needs torch: the distributed-test extra, which
`make test` installs (scripts/bootstrap.sh --with-checkov)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mlcdk import launch

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for the whole run; it takes 6 to 11 on two CPUs

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    total = torch.tensor([rank])
    dist.all_reduce(total)
    seen = {name: os.environ[name] for name in ("RANK", "GROUP_RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                 "AWS_BATCH_JOB_NODE_INDEX")}
    out = sys.argv[1]
    with open(os.path.join(out, f"process-{rank}.json"), "w") as f:
        json.dump(seen, f)
    if rank == 0:
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump({"world_size": dist.get_world_size(), "sum": int(total.item())}, f)
    dist.destroy_process_group()
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def batch_node_environments(**extra: str) -> list[dict[str, str]]:
    """The environments AWS Batch gives two nodes of one job on this machine (plus ``extra``): the main node is not
    told its own address."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_BATCH_", "SLURM_", "MLCDK_"))}
    base.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}", MLCDK_NPROC_PER_NODE="2",
                MLCDK_MASTER_PORT=str(free_port()), AWS_BATCH_JOB_NUM_NODES="2", AWS_BATCH_JOB_MAIN_NODE_INDEX="0",
                MLCDK_SAME_HOST="1",  # both nodes on this machine: the worker may reach the main node on loopback
                **extra)
    return [{**base, "AWS_BATCH_JOB_NODE_INDEX": "0"},
            {**base, "AWS_BATCH_JOB_NODE_INDEX": "1", "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1"}]


def run_nodes(tmp_path: Path, command: list[str], nodes: list[dict[str, str]], cwds: list[Path]) -> tuple[object, str]:
    """Run ``command`` once per node environment, each in its own working directory; return (exit codes, logs)."""
    logs = [(tmp_path / f"node-{i}.log").open("w") for i in range(len(nodes))]
    started = time.monotonic()
    processes = [subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True) for env, log, cwd in zip(nodes, logs, cwds)]
    try:
        codes = [process.wait(timeout=max(1.0, TIMEOUT - (time.monotonic() - started))) for process in processes]
    except subprocess.TimeoutExpired:
        codes = f"still running after {TIMEOUT} s"
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in logs:
            log.close()
    output = "\n".join(f"--- node {i}\n{(tmp_path / f'node-{i}.log').read_text()[-3000:]}" for i in range(len(nodes)))
    print(f"{len(nodes)}-node torchrun took {time.monotonic() - started:.1f} s")
    return codes, output


def expected_processes() -> dict[int, dict[str, str]]:
    """What each of the 4 processes sees: ranks from torchrun's static rendezvous on the main node."""
    main_address = launch.host_address()  # what node 0 found for itself; node 1 reached it through 127.0.0.1
    return {
        0: {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "MASTER_ADDR": main_address,
            "AWS_BATCH_JOB_NODE_INDEX": "0"},
        1: {"RANK": "1", "GROUP_RANK": "0", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": main_address,
            "AWS_BATCH_JOB_NODE_INDEX": "0"},
        2: {"RANK": "2", "GROUP_RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1",
            "AWS_BATCH_JOB_NODE_INDEX": "1"},
        3: {"RANK": "3", "GROUP_RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1",
            "AWS_BATCH_JOB_NODE_INDEX": "1"},
    }


def test_two_batch_nodes_all_reduce_through_torchrun(tmp_path):
    script = tmp_path / "allreduce.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "mlcdk.launch", "--", sys.executable, str(script), str(out)]
    codes, output = run_nodes(tmp_path, command, batch_node_environments(), [ROOT, ROOT])
    assert codes == [0, 0], output

    assert json.loads((out / "result.json").read_text()) == {"world_size": 4, "sum": 0 + 1 + 2 + 3}
    seen = {rank: json.loads((out / f"process-{rank}.json").read_text()) for rank in range(4)}
    assert seen == expected_processes()
