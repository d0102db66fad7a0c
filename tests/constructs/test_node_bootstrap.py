"""Pure parts of the node group: the EFA layout over the whole catalog, user data, the Neuron metrics converter."""
from __future__ import annotations

import json
import re

import pytest

from mlcdk.constructs import user_data
from mlcdk.constructs.assets import neuron_statsd
from mlcdk.constructs.efa import efa_interfaces
from mlcdk.presets import catalog, metrics

EFA_TYPES = [s for s in catalog.default_catalog() if s.efa_supported]


@pytest.mark.parametrize("spec", EFA_TYPES, ids=lambda s: s.instance_type)
def test_efa_layout_for_every_efa_type_in_the_catalog(spec):
    interfaces = efa_interfaces(spec)
    efa = [n for n in interfaces if n["InterfaceType"] == "efa-only"]
    # One EFA device per network card (card 0 at device 1, the others at device 0), capped at the maximum.
    assert len(efa) == min(spec.maximum_efa_interfaces, spec.maximum_network_cards)
    assert interfaces[0] == {"NetworkCardIndex": 0, "DeviceIndex": 0, "InterfaceType": "interface",
                             "AssociatePublicIpAddress": False, "DeleteOnTermination": True}
    slots = [(n["NetworkCardIndex"], n["DeviceIndex"]) for n in interfaces]
    assert len(set(slots)) == len(slots)
    assert all(card < spec.maximum_network_cards for card, _ in slots)
    per_card = {}
    for card, device in slots:
        per_card[card] = per_card.get(card, 0) + 1
    assert all(count <= (spec.network_cards[card].maximum_network_interfaces or 1) for card, count in per_card.items())


def test_efa_on_a_type_without_it_is_refused():
    with pytest.raises(ValueError, match="g5.xlarge does not support EFA"):
        efa_interfaces(catalog.get("g5.xlarge"))


def heredoc(lines: list[str], path: str) -> str:
    start = next(i for i, line in enumerate(lines) if line.startswith(f"cat > {path} <<"))
    marker = re.search(r"<<'(\w+)'", lines[start]).group(1)
    end = lines.index(marker, start)
    return "\n".join(lines[start + 1:end])


@pytest.mark.parametrize(("instance_type", "collected", "absent"), [
    ("p5.48xlarge", "nvidia_gpu", "none"),
    ("trn1.32xlarge", "statsd", "nvidia_gpu"),
    ("inf2.xlarge", "statsd", "nvidia_gpu"),
    ("c7g.xlarge", "cpu", "nvidia_gpu"),
])
def test_agent_config_in_user_data_is_valid_json_with_the_documented_metrics(instance_type, collected, absent):
    spec = catalog.get(instance_type)
    lines = user_data.bootstrap(spec, user_data.NodeBoot(efa=False, data_mount_point=None, extra=[]))
    config = json.loads(heredoc(lines, user_data.AGENT_CONFIG))
    section = config["metrics"]
    assert section["namespace"] == metrics.NAMESPACE == "CWAgent"
    assert section["append_dimensions"]["AutoScalingGroupName"] == "${aws:AutoScalingGroupName}"
    assert section["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert collected in section["metrics_collected"] and absent not in section["metrics_collected"]
    if collected == "nvidia_gpu":
        measured = {f"nvidia_smi_{m}" for m in section["metrics_collected"]["nvidia_gpu"]["measurement"]}
        assert {metrics.NVIDIA.utilization, metrics.NVIDIA.memory_used, metrics.NVIDIA.memory_total} <= measured


def test_every_node_reports_whether_it_runs_on_demand_or_spot():
    lines = user_data.bootstrap(catalog.get("g5.xlarge"), user_data.NodeBoot(efa=False, data_mount_point=None, extra=[]))
    unit = heredoc(lines, "/etc/systemd/system/mlcdk-purchase-gauge.service")
    assert "meta-data/instance-life-cycle" in unit and f"{metrics.ON_DEMAND_NODES}:$V|g" in unit
    config = json.loads(heredoc(lines, user_data.AGENT_CONFIG))
    assert config["metrics"]["metrics_collected"]["statsd"]["service_address"] == "127.0.0.1:8125"


def test_neuron_nodes_run_the_converter_as_a_service_with_the_device_memory():
    lines = user_data.bootstrap(catalog.get("trn1.32xlarge"), user_data.NodeBoot(efa=True, data_mount_point=None, extra=["echo hi"]))
    script = heredoc(lines, user_data.NEURON_CONVERTER)
    compile(script, "neuron_statsd.py", "exec")
    unit = heredoc(lines, "/etc/systemd/system/mlcdk-neuron-metrics.service")
    assert f"--device-memory-bytes {512 * 1024 ** 3}" in unit and "Restart=always" in unit
    assert lines[-1] == "echo hi" and any("fi_info" in line for line in lines)


REPORT = {
    "neuron_runtime_data": [{"pid": 1, "report": {
        "neuroncore_counters": {"neuroncores_in_use": {"0": {"neuroncore_utilization": 90.0},
                                                       "1": {"neuroncore_utilization": 70.0}}},
        "memory_used": {"neuron_runtime_used_bytes": {"host": 1000, "neuron_device": 8 * 1024 ** 3}},
        "execution_stats": {"error_summary": {"generic": 1, "numerical": 0, "transient": 2}},
    }}],
    "system_data": {"neuron_hw_counters": {"neuron_devices": [
        {"neuron_device_index": 0, "mem_ecc_uncorrected": 1, "sram_ecc_uncorrected": 0},
        {"neuron_device_index": 1, "mem_ecc_uncorrected": 0, "sram_ecc_uncorrected": 2}]}},
    "neuron_hardware_info": {"neuron_device_count": 2, "neuroncore_per_device_count": 2},
}


def test_neuron_gauges_average_over_every_core_idle_ones_included():
    values = neuron_statsd.gauges(REPORT, device_memory_bytes=64 * 1024 ** 3)
    assert values == {"neuroncore_utilization": 40.0,  # (90 + 70 + 0 + 0) / 4 cores
                      "neuron_device_memory_utilization": 12.5, "neuron_hw_ecc_uncorrected": 3.0,
                      "neuron_execution_errors": 3.0}
    assert set(values) == {metrics.NEURON.utilization, metrics.NEURON.memory_utilization,
                           metrics.NEURON.hardware_errors, metrics.NEURON_EXECUTION_ERRORS}


def test_an_idle_instance_reports_zero_utilization():
    idle = {"neuron_runtime_data": [], "neuron_hardware_info": {"neuron_device_count": 16, "neuroncore_per_device_count": 2}}
    assert neuron_statsd.gauges(idle, 512 * 1024 ** 3)["neuroncore_utilization"] == 0.0


def test_converter_sends_statsd_gauges_and_skips_bad_lines(capsys):
    packets = []
    sent = neuron_statsd.run([json.dumps(REPORT), "not json", ""], 64 * 1024 ** 3, packets.append)
    assert sent == 4
    assert b"neuroncore_utilization:40.0|g" in packets
    assert "skipping a line that is not JSON" in capsys.readouterr().err


@pytest.mark.parametrize(("life_cycle", "gauge"), [("spot", 0), ("on-demand", 1), ("", 1)])
def test_the_purchase_gauge_reports_one_for_on_demand_and_zero_for_spot(tmp_path, life_cycle, gauge):
    """Runs the gauge's own shell loop once, with IMDS answering ``life_cycle``: the spot-fallback alarm counts
    on-demand nodes as the sum of these gauges, so a flipped polarity would alarm on every healthy spot group."""
    import subprocess

    unit = heredoc(user_data.purchase_gauge(), "/etc/systemd/system/mlcdk-purchase-gauge.service")
    (command,) = re.findall(r"^ExecStart=/bin/bash -c '(.*)'$", unit, re.MULTILINE)
    udp = f"/dev/udp/127.0.0.1/{metrics.STATSD_PORT}"
    assert udp in command and "sleep 60; done" in command
    once = command.replace(udp, '"$OUT"').replace("sleep 60; done", "break; done")
    fake_imds = 'curl() { case "$*" in *instance-life-cycle*) printf %s "$LIFE" ;; *) printf token ;; esac; }; '
    out = tmp_path / "gauge"
    subprocess.run(["bash", "-c", fake_imds + once], check=True, timeout=10,
                   env={"PATH": "/usr/bin:/bin", "LIFE": life_cycle, "OUT": str(out)})
    assert out.read_text() == f"{metrics.ON_DEMAND_NODES}:{gauge}|g\n"
