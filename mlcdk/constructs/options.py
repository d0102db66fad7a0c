"""Option groups for the constructs: small frozen dataclasses instead of dozens of loose keywords."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlcdk.presets import bounds
# Batch's attempts (1-10) and the bounds on one attempt's duration, shared with the job commands.
from mlcdk.presets.batch import JOB_ATTEMPTS, JOB_TIMEOUT_HOURS  # noqa: F401 (re-exported)


def _range(name: str) -> tuple[float, float]:
    bound = bounds.number(name)
    return bound.low, bound.high


#: gp3 limits (EC2 User Guide, "General Purpose SSD volumes"): 1 GiB-16 TiB, 3,000-16,000 IOPS, 125-1,000 MiB/s,
#: from data/bounds.json, which mlcdk.params checks every field against.
GP3_MAX_GIB = int(_range("data_volume_size_gib")[1])
GP3_IOPS = tuple(int(v) for v in _range("data_volume_iops"))
GP3_THROUGHPUT_MIBS = tuple(int(v) for v in _range("data_volume_throughput_mibs"))


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
class CapacityOptions:
    """Capacity you already hold: an On-Demand Capacity Reservation (ODCR), a reservation group, or a
    Capacity Block for ML. Nodes then launch on-demand into it (never spot).

    :param reservation_id: the reservation ("cr-" and 17 hex digits), an ODCR or, with ``capacity_block``,
        the block's reservation.
    :param reservation_group_arn: a Capacity Reservation resource group's ARN instead of one reservation
        (not with ``capacity_block``).
    :param preference: "capacity-reservations-only" (nodes launch only into the target, else fail) or
        "open" (any open reservation with matching attributes, else On-Demand; no target). Default:
        "capacity-reservations-only" with a target, else "open".
    :param capacity_block: the reservation is a Capacity Block for ML: the launch template gets the
        capacity-block market type, there is no placement group (a block's instances are already placed
        close together), and ``availability_zone_id`` is required. Default: off.
    :param availability_zone_id: the reservation's AZ ID (e.g. "use1-az4"); the nodes go there. Required
        with ``capacity_block``. Default: the cluster's AZ (make sure it is the reservation's).
    :param hourly_price_usd: what one reserved instance costs per hour, for the cost alarm and budget.
        Default: the catalog's on-demand price (what an ODCR costs, used or not); give a block's price.
    :param reserved_instances: how many instances the reservation holds: the cost metric never drops
        below them, since they are paid whether they run or not. Default: the cluster's node count (a
        fleet's max_capacity).
    :param block_end: the block's end, ISO 8601 with a UTC offset (e.g. "2026-12-08T11:30:00+00:00").
        With engine="nodes", the group scales to zero ``checkpoint_grace_period`` before EC2 starts
        terminating the block's instances (30 minutes before the end), so the checkpoint hook runs.
        Default: none (the 40-minute expiration warning still reaches the alarm topic).
    """

    reservation_id: str | None = None
    reservation_group_arn: str | None = None
    preference: str | None = None
    capacity_block: bool = False
    availability_zone_id: str | None = None
    hourly_price_usd: float | None = None
    reserved_instances: int | None = None
    block_end: str | None = None

    @property
    def targeted(self) -> bool:
        return self.reservation_id is not None or self.reservation_group_arn is not None

    @property
    def resolved_preference(self) -> str:
        return self.preference or ("capacity-reservations-only" if self.targeted else "open")


@dataclass(frozen=True)
class StorageOptions:
    """EBS volumes of each node: gp3, encrypted with the construct's KMS key.

    :param root_volume_size_gib: root volume. Default: 200 GiB (DLAMIs need about 100 GiB with room for
        containers and caches).
    :param data_volume_size_gib: an extra data volume mounted at ``data_mount_point``. Default: none.
    :param data_volume_iops: gp3 IOPS of the data volume; above 3,000, at most 500 per GiB of its size.
        Default: 3,000 (the gp3 baseline).
    :param data_volume_throughput_mibs: gp3 throughput of the data volume, at most 0.25 MiB/s per IOPS.
        Default: 125 MiB/s.
    :param data_mount_point: where the data volume is mounted: an absolute path of letters, digits, '.', '_',
        '-' and '/', not / nor a system directory such as /etc or /usr, nor inside /proc, /sys, /dev or /run
        (mlcdk.constructs.limits.mount_point_problem). Default: /data.
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

    :param stop: cron expression for scaling to 0, e.g. "0 20 * * 1-5" (20:00 on weekdays): Auto Scaling's five
        fields (minute hour day-of-month month day-of-week), not EventBridge's ``cron(...)``.
    :param start: cron expression for scaling back to the configured size, e.g. "0 7 * * 1-5".
    :param time_zone: an IANA time zone name, e.g. "Europe/Berlin". Default: UTC.
    """

    stop: str
    start: str
    time_zone: str = "UTC"


#: CloudWatch Logs retention periods (AWS::Logs::LogGroup RetentionInDays): days -> aws-cdk's RetentionDays name.
LOG_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
                 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
                 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
                 1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS",
                 3288: "NINE_YEARS", 3653: "TEN_YEARS"}
LOG_RETENTION_DAYS = tuple(LOG_RETENTION)


@dataclass(frozen=True)
class JobOptions:
    """The AWS Batch engine's job definition (``engine="batch"``).

    :param image: the container image. A DLC-style tag (``...-cu128-...``, ``...-sdk2.21.0-...``) is checked
        against the cluster's accelerator and refused when it cannot drive it; any other reference is used with the
        warning ``mlcdk:jobImageUnchecked``. Default: the first AWS Deep Learning Container of
        ``mlcdk/presets/data/containers.json`` that drives every type of the cluster (PyTorch on CUDA, PyTorch
        NeuronX, or CPU; ``mlcdk images list``); a cluster that none drives is refused.
    :param timeout_hours: the limit of one job attempt; Batch stops the job after it. Default: 72.
    :param retry_attempts: attempts per job, 1-10. Only host and capacity failures (status reasons
        ``Host EC2*``) are retried; an application error (any exit code) ends the job. Default: 3.
    :param log_retention_days: retention of the job log group (a CloudWatch Logs period). Default: 30.
    :param shell: let ``mlcdk shell JOB`` open a shell in a running job's container through Amazon ECS Exec
        (``enableExecuteCommand`` on the job definition, and the four ``ssmmessages`` channel actions on the job
        role). Who may open one is decided by ``ecs:ExecuteCommand`` in IAM. Default: True.
    :param secrets: environment variables taken from AWS Secrets Manager when a job starts, as
        ``{"HF_TOKEN": "<secret ARN>"}``: the job definition's ``secrets``, read by the job's execution role,
        which gets ``secretsmanager:GetSecretValue`` on those secrets only. The values never appear in the
        template, the job or ``mlcdk submit --env`` (which refuses anything that looks like a secret).
        Default: none.
    :param runnable_timeout_minutes: how long a job may wait in RUNNABLE for capacity (status reason
        ``CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY``) before the queue cancels it, 10 to 1,440 (Batch's bounds, in
        data/bounds.json). A job held by a misconfiguration (``MISCONFIGURATION:*``, which waiting cannot fix) is cancelled after
        Batch's minimum, 10 minutes. The cancellation reaches the alarm topic. Default: 240 (4 hours, the example
        of the Batch user guide's "Automatic remediation with jobStateTimeLimitActions").
    """

    image: str | None = None
    timeout_hours: float = 72
    retry_attempts: int = 3
    log_retention_days: int = 30
    shell: bool = True
    secrets: Mapping[str, str] | None = None
    runnable_timeout_minutes: int = 240


@dataclass(frozen=True)
class DataRepositoryLink:
    """An S3 bucket or prefix imported, read-only, into the shared file system (a data repository
    association with automatic import of new, changed and deleted objects, and no export).

    :param s3_uri: the bucket or prefix, e.g. "s3://my-datasets/imagenet/".
    :param path: where it appears on the file system, an absolute path such as "/datasets" (then
        ``/fsx/datasets`` on the nodes). Files written there stay on the file system: nothing is exported.
    """

    s3_uri: str
    path: str


@dataclass(frozen=True)
class ExistingFileSystem:
    """An FSx for Lustre file system you already have, mounted instead of creating one.

    :param file_system_id: e.g. "fs-0123456789abcdef0".
    :param dns_name: e.g. "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com".
    :param mount_name: its ``LustreMountName`` (DescribeFileSystems), e.g. "abcdefgh".
    :param security_group_id: the group on its network interfaces; mlcdk adds the Lustre rules between it
        and the nodes' group.
    :param vpc_id: its VPC. A cluster in another VPC is refused when both IDs are known. Default: unknown.
    """

    file_system_id: str
    dns_name: str
    mount_name: str
    security_group_id: str
    vpc_id: str | None = None


@dataclass(frozen=True)
class SharedStorageOptions:
    """An FSx for Lustre file system shared by every node, linked to S3 (see mlcdk.constructs.shared_storage).

    :param deployment_type: "PERSISTENT_2" (replicated, encrypted with the cluster's key) or "SCRATCH_2"
        (not replicated, FSx's own key). Default: "PERSISTENT_2".
    :param storage_capacity_gib: 1200, 2400 or a multiple of 2400. With ``existing_file_system``, that file
        system's size (for the free-capacity alarm). Default: 1200.
    :param throughput_mbps_per_tib: PERSISTENT_2's throughput tier: 125, 250, 500 or 1000 MB/s per TiB.
        SCRATCH_2 has a fixed baseline (200) and takes none. Default: 125 on PERSISTENT_2 (the lowest tier, which
        can be raised in place later; why not the reference's 250: data/fsx.json "defaults").
    :param data_compression: "LZ4" or "NONE" (FSx's DataCompressionType). Default: "LZ4", as in AWS's reference
        file system: it costs nothing and stretches the capacity and throughput paid for (data/fsx.json).
    :param mount_point: where every node (and every Batch job's container) sees it. Default: /fsx.
    :param checkpoint_path: the file-system path linked to the checkpoint bucket, with automatic import and
        export (``/fsx/checkpoints`` on the nodes). None: not linked. Default: "/checkpoints".
    :param data_repositories: read-only S3 imports (DataRepositoryLink). With the checkpoint link, at most 8
        associations. Default: none.
    :param free_capacity_alarm_percent: alarm when free storage falls below this share of the capacity.
        Default: 10.
    :param existing_file_system: mount a file system you have (ExistingFileSystem) instead of creating one;
        its cost is not counted. Default: a new file system.
    """

    deployment_type: str = "PERSISTENT_2"
    storage_capacity_gib: int = 1200
    throughput_mbps_per_tib: int | None = None
    data_compression: str = "LZ4"
    mount_point: str = "/fsx"
    checkpoint_path: str | None = "/checkpoints"
    data_repositories: tuple[DataRepositoryLink, ...] = ()
    free_capacity_alarm_percent: float = 10
    existing_file_system: ExistingFileSystem | None = None
