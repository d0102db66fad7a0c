"""Which accelerator metrics mlcdk publishes, under which names, and the CloudWatch agent config for them.

Pure Python. Everything lands in the CloudWatch agent's namespace (``CWAgent``) with an
``AutoScalingGroupName`` dimension, so alarms and dashboards address a whole cluster or fleet:

- NVIDIA: the agent's own ``nvidia_gpu`` input (names ``nvidia_smi_<measurement>``, from the CloudWatch
  agent documentation). Memory utilization is ``memory_used / memory_total`` in metric math, because
  ``utilization_memory`` is memory *bandwidth* use, not capacity.
- Neuron (Trainium, Inferentia): ``neuron-monitor`` JSON, turned into StatsD gauges by
  ``mlcdk/constructs/assets/neuron_statsd.py`` and received by the agent's ``statsd`` input, which adds
  the same dimensions. The AWS sample ``neuron-monitor-cloudwatch.py`` is not used: it cannot add the
  Auto Scaling group dimension, and its metric names are not documented as stable. The names below
  are ours, documented here and in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMESPACE = "CWAgent"
ASG_DIMENSION = "AutoScalingGroupName"
#: The dimension every TrainingCluster node adds to its metrics, whatever the engine: its value is the
#: cluster's unique name. An AWS Batch compute environment's Auto Scaling group is created by Batch under a
#: name that is unknown at synth, so alarms on a Batch cluster address the cluster by this dimension.
CLUSTER_DIMENSION = "MlcdkCluster"
#: StatsD gauge each TrainingCluster node reports every minute (value 1): summed per minute over the
#: cluster, it counts the nodes that run, on both engines.
NODES = "mlcdk_nodes"
#: The CPU metric of the agent's ``cpu`` input with ``totalcpu`` (percent busy, all cores).
CPU_ACTIVE = "cpu_usage_active"
STATSD_PORT = 8125

NVIDIA_MEASUREMENTS = ("utilization_gpu", "utilization_memory", "memory_used", "memory_total",
                       "temperature_gpu", "power_draw")


@dataclass(frozen=True)
class AcceleratorMetricNames:
    """CloudWatch metric names (namespace CWAgent) for one accelerator kind."""

    utilization: str  #: percent, averaged over every device or NeuronCore of the group
    memory_utilization: str | None  #: percent, published directly (Neuron)
    memory_used: str | None  #: for used / total metric math (NVIDIA)
    memory_total: str | None
    hardware_errors: str | None  #: uncorrectable ECC events (Neuron); None where the agent has none


NVIDIA = AcceleratorMetricNames(
    utilization="nvidia_smi_utilization_gpu", memory_utilization=None,
    memory_used="nvidia_smi_memory_used", memory_total="nvidia_smi_memory_total", hardware_errors=None,
)
NEURON = AcceleratorMetricNames(
    utilization="neuroncore_utilization", memory_utilization="neuron_device_memory_utilization",
    memory_used=None, memory_total=None, hardware_errors="neuron_hw_ecc_uncorrected",
)
NEURON_EXECUTION_ERRORS = "neuron_execution_errors"
#: StatsD gauge each node reports every minute: 1 when it runs on demand, 0 on spot (from IMDS
#: instance-life-cycle). Summed over the group it counts on-demand nodes, for the spot-fallback alarm.
ON_DEMAND_NODES = "mlcdk_on_demand_nodes"


def metric_names(accelerator_kind: str | None) -> AcceleratorMetricNames | None:
    """The names for "gpu" (NVIDIA) and "neuron"; None for CPU-only and other accelerators."""
    return {"gpu": NVIDIA, "neuron": NEURON}.get(accelerator_kind or "")


def statsd_tags(cluster: str | None) -> str:
    """The DogStatsD tag suffix that gives a gauge the cluster dimension ("" without a cluster)."""
    return f"|#{CLUSTER_DIMENSION}:{cluster}" if cluster else ""


#: The model server's Prometheus metrics the CloudWatch agent imports (vLLM's queue: waiting and running requests),
#: under the agent's namespace with one dimension, the ECS cluster of the fleet (the agent's ``cluster_name``).
SERVER_METRICS = ("vllm:num_requests_waiting", "vllm:num_requests_running")
SERVER_DIMENSION = "ClusterName"
SERVER_JOB = "vllm"
PROMETHEUS_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/mlcdk-prometheus.yaml"


@dataclass(frozen=True)
class PrometheusScrape:
    """A model server the node's CloudWatch agent scrapes (CloudWatch user guide, "Set up and configure Prometheus
    metrics collection on Amazon EC2 instances": a standard scrape config, and a ``prometheus`` section under
    ``logs.metrics_collected`` whose embedded-metric-format processor turns the selected series into metrics)."""

    port: int
    path: str  #: e.g. /metrics
    cluster_name: str  #: the dimension's value
    log_group_name: str  #: where the agent writes the embedded-metric-format events

    def scrape_config(self) -> str:
        """The Prometheus scrape configuration (YAML), one static target: the server on this node."""
        return "\n".join(["global:", "  scrape_interval: 1m", "  scrape_timeout: 10s", "scrape_configs:",
                          f"  - job_name: {SERVER_JOB}", f"    metrics_path: {self.path}", "    static_configs:",
                          f"      - targets: ['127.0.0.1:{self.port}']", ""])

    def agent_section(self) -> dict[str, Any]:
        return {"cluster_name": self.cluster_name, "log_group_name": self.log_group_name,
                "prometheus_config_path": PROMETHEUS_CONFIG,
                "emf_processor": {"metric_declaration_dedup": True, "metric_namespace": NAMESPACE,
                                  "metric_declaration": [{
                                      "source_labels": ["job"], "label_matcher": f"^{SERVER_JOB}$",
                                      "dimensions": [[SERVER_DIMENSION]],
                                      "metric_selectors": [f"^{name}$" for name in SERVER_METRICS]}]}}


def agent_config(accelerator_kind: str | None, gpu_manufacturer: str | None = None,
                 cluster: str | None = None, prometheus: PrometheusScrape | None = None) -> dict[str, Any]:
    """The CloudWatch agent configuration for a node of the given accelerator kind.

    With ``cluster``, every input also carries the CLUSTER_DIMENSION (``append_dimensions`` per input; the
    agent's global ``append_dimensions`` accepts only its ``${aws:...}`` keys) and the agent also
    aggregates over it, so one series per cluster exists beside the per-instance ones.
    """
    collected: dict[str, Any] = {
        "cpu": {"measurement": ["usage_active"], "totalcpu": True},
        "mem": {"measurement": ["used_percent"]},
        "disk": {"measurement": ["used_percent"], "resources": ["/"]},
    }
    if accelerator_kind == "gpu" and (gpu_manufacturer or "NVIDIA") == "NVIDIA":
        collected["nvidia_gpu"] = {"measurement": list(NVIDIA_MEASUREMENTS)}
    # Every node: the on-demand gauge (and, on Neuron nodes, neuron-monitor's metrics) arrive over StatsD.
    collected["statsd"] = {"service_address": f"127.0.0.1:{STATSD_PORT}",
                           "metrics_collection_interval": 60, "metrics_aggregation_interval": 60}
    aggregation = [[ASG_DIMENSION]]
    if cluster:
        for name, section in collected.items():
            if name != "statsd":  # StatsD gauges carry the dimension as a tag (statsd_tags)
                section["append_dimensions"] = {CLUSTER_DIMENSION: cluster}
        aggregation.append([CLUSTER_DIMENSION])
    config: dict[str, Any] = {
        "agent": {"metrics_collection_interval": 60, "run_as_user": "root"},
        "metrics": {
            "namespace": NAMESPACE,
            "append_dimensions": {ASG_DIMENSION: "${aws:AutoScalingGroupName}", "InstanceId": "${aws:InstanceId}"},
            "aggregation_dimensions": aggregation,
            "metrics_collected": collected,
        },
    }
    if prometheus is not None:
        config["logs"] = {"metrics_collected": {"prometheus": prometheus.agent_section()}}
    return config
