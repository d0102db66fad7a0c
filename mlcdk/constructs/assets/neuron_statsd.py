#!/usr/bin/env python3
"""Turn neuron-monitor's JSON reports (one per line on stdin) into StatsD gauges for the CloudWatch agent.

Usage on a node:  neuron-monitor | python3 neuron_statsd.py --device-memory-bytes N [--port 8125]

Published gauges (names documented in mlcdk.presets.metrics):
  neuroncore_utilization            mean over *all* NeuronCores of the instance, idle ones counting as 0 (%)
  neuron_device_memory_utilization  device memory used by Neuron runtimes / the instance's device memory (%)
  neuron_hw_ecc_uncorrected         uncorrected memory + SRAM ECC events, summed over devices (counter value)
  neuron_execution_errors           execution errors in the last period, summed over runtimes and kinds

Field names follow the neuron-monitor user guide (metric groups neuroncore_counters, memory_used,
neuron_hw_counters, execution_stats). Standard library only: it runs on any Neuron DLAMI.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Iterable


def gauges(report: dict, device_memory_bytes: int) -> dict[str, float]:
    """The four gauges for one neuron-monitor report."""
    hardware = report.get("neuron_hardware_info") or {}
    total_cores = (hardware.get("neuron_device_count") or 0) * (hardware.get("neuroncore_per_device_count") or 0)
    busy, used_bytes, errors, cores_seen = 0.0, 0, 0, 0
    for runtime in report.get("neuron_runtime_data") or []:
        data = runtime.get("report") or {}
        in_use = ((data.get("neuroncore_counters") or {}).get("neuroncores_in_use")) or {}
        for core in in_use.values():
            busy += float(core.get("neuroncore_utilization") or 0.0)
            cores_seen += 1
        memory = ((data.get("memory_used") or {}).get("neuron_runtime_used_bytes")) or {}
        used_bytes += int(memory.get("neuron_device") or 0)
        summary = ((data.get("execution_stats") or {}).get("error_summary")) or {}
        errors += sum(int(v or 0) for v in summary.values())
    ecc = 0
    for device in ((report.get("system_data") or {}).get("neuron_hw_counters") or {}).get("neuron_devices") or []:
        ecc += int(device.get("mem_ecc_uncorrected") or 0) + int(device.get("sram_ecc_uncorrected") or 0)
    cores = max(total_cores, cores_seen, 1)
    return {
        "neuroncore_utilization": round(busy / cores, 3),
        "neuron_device_memory_utilization": round(100.0 * used_bytes / device_memory_bytes, 3) if device_memory_bytes else 0.0,
        "neuron_hw_ecc_uncorrected": float(ecc),
        "neuron_execution_errors": float(errors),
    }


def statsd_lines(values: dict[str, float], tags: str = "") -> list[str]:
    """One StatsD gauge per value; ``tags`` is a DogStatsD suffix such as "|#MlcdkCluster:name"."""
    return [f"{name}:{value}|g{tags}" for name, value in sorted(values.items())]


def run(lines: Iterable[str], device_memory_bytes: int, send, tags: str = "") -> int:
    sent = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            report = json.loads(line)
        except ValueError:
            print(f"neuron_statsd: skipping a line that is not JSON: {line[:80]!r}", file=sys.stderr)
            continue
        for packet in statsd_lines(gauges(report, device_memory_bytes), tags):
            send(packet.encode())
            sent += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device-memory-bytes", type=int, required=True)
    parser.add_argument("--port", type=int, default=8125)
    parser.add_argument("--tags", default="", help="DogStatsD tag suffix, e.g. '|#MlcdkCluster:name'")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    run(sys.stdin, args.device_memory_bytes, lambda packet: sock.sendto(packet, ("127.0.0.1", args.port)), args.tags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
