"""The all-reduce bandwidth test that ``mlcdk check`` runs on every node, under mlcdk.launch and torchrun.

``python3 allreduce.py [--bytes B] [--iterations N] [--warmup W] [--min-busbw-gbytes G]``, once per process.
Standard library at import; torch (and torch_xla on Neuron) inside, from the training image. It travels with the
submission in MLCDK_CHECK (like the launcher in MLCDK_LAUNCHER), so no image is rebuilt.

The backend follows MLCDK_ACCELERATOR: NCCL on NVIDIA GPUs; Neuron collectives through torch-xla's "xla" process
group on Trainium, as aws-neuron-samples torch-neuronx/training/aws-batch/all-reduce/docker/allreduce.py does;
gloo on CPU. Each node's first process prints one line, ``MLCDK_CHECK {json}``, with the time of one all-reduce
of B bytes of float32, its algorithm bandwidth B/t and its bus bandwidth, as nccl-tests defines it for all-reduce
(NVIDIA/nccl-tests doc/PERFORMANCE.md): busBw = algBw * 2(n-1)/n, n the number of ranks. GB/s are 10^9 bytes
a second, as nccl-tests prints them. An error prints ``MLCDK_CHECK_FAILED {json}`` with the stage that failed.

Exit codes: 0 measured (and at least G GB/s on every node when G is given); 1 below G, or a stage failed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

MARK = "MLCDK_CHECK"
FAILED = "MLCDK_CHECK_FAILED"
BACKENDS = {"gpu": "nccl", "neuron": "xla"}  # anything else: gloo


def bus_bandwidth(algbw: float, ranks: int) -> float:
    """nccl-tests' all-reduce bus bandwidth: algbw * 2(n-1)/n."""
    return algbw * 2 * (ranks - 1) / ranks


def say(tag: str, **fields) -> None:
    print(f"{tag} {json.dumps(fields, sort_keys=True)}", flush=True)


class Collective:
    """One backend's all-reduce on a float32 buffer, and a way to wait for the device."""

    def __init__(self, backend: str, local_rank: int, count: int, timeout: float) -> None:
        import torch
        import torch.distributed as dist

        self.torch, self.dist, self.backend = torch, dist, backend
        wait = datetime.timedelta(seconds=timeout)
        if backend == "xla":
            import torch_xla.core.xla_model as xm
            import torch_xla.distributed.xla_backend  # noqa: F401 - registers the "xla" process group

            self.xm = xm
            dist.init_process_group("xla", timeout=wait)
            self.device = xm.xla_device()
        elif backend == "nccl":
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl", timeout=wait)
            self.device = torch.device("cuda", local_rank)
        else:
            dist.init_process_group("gloo", timeout=wait)
            self.device = torch.device("cpu")
        self.buffer = torch.ones(count, dtype=torch.float32, device=self.device)

    def all_reduce(self) -> None:
        if self.backend == "xla":
            self.buffer = self.xm.all_reduce("sum", self.buffer, scale=1.0 / self.dist.get_world_size())
            self.xm.mark_step()
        else:
            self.dist.all_reduce(self.buffer)
            self.buffer.div_(self.dist.get_world_size())  # keep the values at 1, never overflowing

    def barrier(self) -> None:
        if self.backend == "xla":
            self.xm.rendezvous("mlcdk-check")  # as aws-neuron-samples' all-reduce sample waits for every rank
        else:
            self.dist.barrier()

    def synchronize(self) -> None:
        if self.backend == "xla":
            self.xm.wait_device_ops()
        elif self.backend == "nccl":
            self.torch.cuda.synchronize()

    def sums_ranks(self) -> bool:
        """A small all-reduce whose answer is known: the sum of the ranks, 0 + 1 + ... + (n - 1)."""
        torch, dist = self.torch, self.dist
        probe = torch.tensor([float(dist.get_rank())], device=self.device)
        if self.backend == "xla":
            probe = self.xm.all_reduce("sum", probe)
            self.xm.mark_step()
        else:
            dist.all_reduce(probe)
        n = dist.get_world_size()
        return float(probe.cpu().item()) == n * (n - 1) / 2


def measure(collective: Collective, warmup: int, iterations: int) -> float:
    """Seconds per all-reduce, averaged over ``iterations`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        collective.all_reduce()
    collective.synchronize()
    collective.barrier()
    started = time.perf_counter()
    for _ in range(iterations):
        collective.all_reduce()
    collective.synchronize()
    return (time.perf_counter() - started) / iterations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="allreduce.py")
    parser.add_argument("--bytes", type=int, default=256 * 2**20, help="bytes per all-reduce (float32)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-busbw-gbytes", type=float, default=None, help="fail below this bus bandwidth")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the process group")
    args = parser.parse_args(argv)
    env = os.environ
    local_rank, node = int(env.get("LOCAL_RANK", "0")), int(env.get("GROUP_RANK", "0"))
    backend = BACKENDS.get(env.get("MLCDK_ACCELERATOR", ""), "gloo")
    first = local_rank == 0
    stage = "init"
    try:
        collective = Collective(backend, local_rank, max(1, args.bytes // 4), args.timeout)
        ranks = collective.dist.get_world_size()
        stage = "verify"
        if not collective.sums_ranks():
            raise RuntimeError("an all-reduce of the ranks returned a wrong sum")
        stage = "measure"
        seconds = measure(collective, args.warmup, args.iterations)
    except Exception as error:  # the line names the stage; torchrun records the traceback too
        if first:
            say(FAILED, node=node, backend=backend, stage=stage, error=f"{type(error).__name__}: {error}"[:2000])
        raise SystemExit(1) from error
    algbw = args.bytes / seconds / 1e9
    busbw = bus_bandwidth(algbw, ranks)
    ok = args.min_busbw_gbytes is None or busbw >= args.min_busbw_gbytes
    if first:
        say(MARK, node=node, nodes=int(env.get("GROUP_WORLD_SIZE", "1")), ranks=ranks, backend=backend,
            bytes=args.bytes, seconds=round(seconds, 6), algbw_gbytes=round(algbw, 3), busbw_gbytes=round(busbw, 3),
            minimum_gbytes=args.min_busbw_gbytes, ok=ok,
            instance_type=env.get("MLCDK_INSTANCE_TYPE"), host=env.get("AWS_BATCH_JOB_NODE_INDEX"))
    collective.dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
