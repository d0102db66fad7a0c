"""Option groups for the constructs: small frozen dataclasses instead of dozens of loose keywords."""

from __future__ import annotations

from dataclasses import dataclass

PURCHASE_OPTIONS = ("on-demand", "spot", "mixed")
#: gp3 limits (EC2 User Guide, "General Purpose SSD volumes"): 1 GiB-16 TiB, 3,000-16,000 IOPS, 125-1,000 MiB/s.
GP3_MAX_GIB = 16384
GP3_IOPS = (3000, 16000)
GP3_THROUGHPUT_MIBS = (125, 1000)


@dataclass(frozen=True)
class PurchaseOptions:
    """How nodes are bought.

    :param option: "on-demand", "spot", or "mixed" (an on-demand base plus spot above it).
    :param on_demand_base_capacity: nodes always bought on demand ("mixed" only).
    :param on_demand_percentage_above_base: percent of the nodes above the base bought on demand ("mixed" only).
    :param fallback_instance_types: more types the group may launch (spot pools, or on-demand capacity
        fallbacks), in priority order after the primary type. Default: the preset's fallbacks that fit the
        instance type; none without a preset.
    """

    option: str = "on-demand"
    on_demand_base_capacity: int = 0
    on_demand_percentage_above_base: int = 0
    fallback_instance_types: tuple[str, ...] | None = None

    @property
    def uses_spot(self) -> bool:
        return self.option != "on-demand"


@dataclass(frozen=True)
class StorageOptions:
    """EBS volumes of each node: gp3, encrypted with the construct's KMS key.

    :param root_volume_size_gib: root volume. Default: 200 GiB (DLAMIs need about 100 GiB with room for
        containers and caches).
    :param data_volume_size_gib: an extra data volume mounted at ``data_mount_point``. Default: none.
    :param data_volume_iops: gp3 IOPS of the data volume. Default: 3,000 (the gp3 baseline).
    :param data_volume_throughput_mibs: gp3 throughput of the data volume. Default: 125 MiB/s.
    :param data_mount_point: where the data volume is mounted. Default: /data.
    :param root_device_name: the AMI's root device. Default: the catalog AMI's (/dev/sda1 for the DLAMIs).
    """

    root_volume_size_gib: int = 200
    data_volume_size_gib: int | None = None
    data_volume_iops: int = 3000
    data_volume_throughput_mibs: int = 125
    data_mount_point: str = "/data"
    root_device_name: str | None = None


@dataclass(frozen=True)
class ScaleSchedule:
    """Scale the group to zero and back on a schedule (cron in ``time_zone``), e.g. off at night.

    :param stop: cron expression for scaling to 0, e.g. "0 20 * * 1-5" (20:00 on weekdays).
    :param start: cron expression for scaling back to the configured size, e.g. "0 7 * * 1-5".
    :param time_zone: an IANA time zone. Default: UTC.
    """

    stop: str
    start: str
    time_zone: str = "UTC"


#: CloudWatch Logs retention periods, in days (AWS::Logs::LogGroup RetentionInDays).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
#: Batch retry strategy attempts (RetryStrategy.Attempts): 1-10.
JOB_ATTEMPTS = (1, 10)
#: A job attempt's limit: Batch's minimum of 60 s, up to 14 days.
JOB_TIMEOUT_HOURS = (1 / 60, 14 * 24)


@dataclass(frozen=True)
class JobOptions:
    """The AWS Batch engine's job definition (``engine="batch"``).

    :param image: the container image. Default: the AWS Deep Learning Container for the accelerator
        (PyTorch on CUDA, PyTorch Neuron, or CPU), from ``mlcdk/presets/data/containers.json``.
    :param timeout_hours: the limit of one job attempt; Batch stops the job after it. Default: 72.
    :param retry_attempts: attempts per job, 1-10. Only host and capacity failures (status reasons
        ``Host EC2*``) are retried; an application error (any exit code) ends the job. Default: 3.
    :param log_retention_days: retention of the job log group (a CloudWatch Logs period). Default: 30.
    """

    image: str | None = None
    timeout_hours: float = 72
    retry_attempts: int = 3
    log_retention_days: int = 30
