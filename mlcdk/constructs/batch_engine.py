"""BatchEngine: a TrainingCluster's AWS Batch side: compute environment, job queue, job definition, job role, logs.

Batch runs the jobs (``engine="batch"``, the default): it starts the nodes when a job arrives, tells each node
its index, the node count and the main node's address, and scales back to zero when the queue is empty.
mlcdk writes no scheduler. The nodes run the cluster's own launch template (every EFA interface, IMDSv2,
KMS-encrypted gp3, MIME multipart user data), and the job's container gets what the catalog says the type
has: vCPUs, memory, GPUs, the uverbs device of every EFA interface and every Neuron device.

Traps handled here (each asserted in tests/constructs/test_batch_engine.py):

- Batch rejects a compute environment with ``SecurityGroupIds`` when its launch template defines network
  interfaces (aws-cdk #21577); the L2 always emits them, so they are deleted and the group sits on every
  interface instead. The job containers' awsvpc interfaces then use the VPC's default security group, which
  mlcdk opens to them and the nodes; card 0 keeps a free slot for them (mlcdk.constructs.batch_network).
- An unversioned launch template means ``$Default``, which Batch freezes at creation (aws-cdk #28137): the
  compute environment names the template's latest version number, and ``ReplaceComputeEnvironment`` makes a
  template change replace the environment.
- Multi-node parallel jobs cannot run on spot (Batch user guide, "Multi-node parallel jobs"): TrainingCluster
  refuses that before this construct exists.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mlcdk import launch
from mlcdk.constructs import security
from mlcdk.constructs.batch_network import batch_node_template, open_task_network
from mlcdk.constructs.efa import efa_device_count
from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.cluster_parts import ClusterParts
from mlcdk.constructs.node_group import LaunchTemplateProps, node_launch_template
from mlcdk.constructs.options import LOG_RETENTION
from mlcdk.constructs.plan_training import TrainingPlan
from mlcdk.presets import catalog, workloads
from mlcdk.presets.catalog import InstanceSpec

#: Share of the type's nominal memory a job's container asks for. ECS registers less than the nominal
#: memory (the kernel, Docker and the ECS agent keep some: about 500,000 of 524,288 MiB on trn1.32xlarge,
#: torchx #795), and a job that asks for more than ECS registers stays RUNNABLE forever. 90% stays below.
CONTAINER_MEMORY_SHARE = 0.90
#: /dev/shm as a share of the container's memory: PyTorch data loaders and NCCL pass tensors through it.
SHARED_MEMORY_SHARE = 0.5
#: ulimits of the job's container: pinned memory for EFA/NCCL/Neuron DMA, a large stack, many files. The values of
#: AWS's reference p5 and p6 Batch job definitions (awsome-distributed-training 1.architectures/3.aws-batch/:
#: memlock -1, stack 67,108,864, nofile 1,024,000).
ULIMITS = ((batch.UlimitName.MEMLOCK, -1), (batch.UlimitName.STACK, 67_108_864), (batch.UlimitName.NOFILE, 1_024_000))
#: Status reasons Batch gives when the host, not the job, failed (instance terminated, capacity lost).
HOST_FAILURE_REASON = "Host EC2*"
#: Why a job sits in RUNNABLE that waiting cannot fix (Batch user guide, "Jobs stuck in RUNNABLE due to
#: misconfiguration": a job larger than every environment's maxvCpus, or than every instance type). Cancelled after
#: the API's minimum of 10 minutes; RUNNABLE for capacity (CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY) after
#: JobOptions.runnable_timeout_minutes.
MISCONFIGURATION_TIMEOUT_MINUTES = 10


def runnable_limits(capacity_minutes: int) -> list[batch.JobStateTimeLimitAction]:
    """The job queue's JobStateTimeLimitActions: cancel a RUNNABLE job held for capacity after ``capacity_minutes``,
    and one held by a misconfiguration after 10 minutes (Batch user guide, "Automatic remediation with
    jobStateTimeLimitActions"; the reasons are those the ECS compute environments report)."""
    reasons = [(batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY, capacity_minutes),
               (batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE, MISCONFIGURATION_TIMEOUT_MINUTES),
               (batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT, MISCONFIGURATION_TIMEOUT_MINUTES)]
    return [batch.JobStateTimeLimitAction(max_time=cdk.Duration.minutes(minutes), reason=reason,
                                          action=batch.JobStateTimeLimitActionsAction.CANCEL,
                                          state=batch.JobStateTimeLimitActionsState.RUNNABLE)
            for reason, minutes in reasons]


def nproc_per_node(spec: InstanceSpec) -> int:
    """Processes per node: one per GPU, or one per NeuronCore, else one."""
    acc = spec.accelerator
    if acc is not None and acc.kind == "neuron" and acc.neuron_cores:
        return acc.neuron_cores
    if acc is not None and acc.kind == "gpu":
        return acc.count
    return 1


def container_memory_mib(spec: InstanceSpec) -> int:
    return int(spec.memory_mib * CONTAINER_MEMORY_SHARE)


def device_paths(spec: InstanceSpec, efa: bool) -> list[str]:
    """Host devices the container needs: /dev/infiniband/uverbsN per EFA interface, /dev/neuronN per device."""
    paths = []
    if efa:
        paths += [f"/dev/infiniband/uverbs{i}" for i in range(efa_device_count(spec))]
    acc = spec.accelerator
    if acc is not None and acc.kind == "neuron":
        paths += [f"/dev/neuron{i}" for i in range(acc.count)]
    return paths


def job_environment(spec: InstanceSpec, efa: bool, checkpoint_bucket: str) -> dict[str, str]:
    """What the launcher (mlcdk.launch) and the training script read, computed from the catalog at synth."""
    kind = spec.accelerator.kind if spec.accelerator else "none"
    return {
        "MLCDK_INSTANCE_TYPE": spec.instance_type,
        "MLCDK_NPROC_PER_NODE": str(nproc_per_node(spec)),
        "MLCDK_ACCELERATOR": kind,
        "MLCDK_EFA": "1" if efa else "0",
        "MLCDK_EFA_DEVICE_RDMA": "1" if efa and workloads.efa_device_rdma(spec) else "0",
        "MLCDK_CHECKPOINT_BUCKET": checkpoint_bucket,
        launch.LAUNCHER_ENV: launch.encoded_source(),
    }


def job_secrets(scope: Construct, secrets: Mapping[str, str] | None) -> dict[str, batch.Secret] | None:
    """JobOptions.secrets as the job definition's secrets (the execution role may read each one, nothing more)."""
    if not secrets:
        return None
    return {name: batch.Secret.from_secrets_manager(secretsmanager.Secret.from_secret_complete_arn(
        scope, f"Secret{index}", secrets[name])) for index, name in enumerate(sorted(secrets))}


def acknowledge_ecs_exec(job_role: iam.IRole) -> None:
    """`mlcdk shell` (ECS Exec, JobOptions.shell): aws-cdk adds the four ssmmessages channel actions to the job role's
    default policy when the container has enable_execute_command."""
    acknowledge(job_role, "AwsSolutions-IAM5", "ECS Exec (mlcdk shell): the job role's four ssmmessages channel "
                "actions support no resource-level permissions; the ECS Developer Guide's task role policy for ECS "
                "Exec grants them on *", finding="Resource::*")
    acknowledge(job_role, "NIST.800.53.R5-IAMNoInlinePolicy", "aws-cdk writes ECS Exec's ssmmessages actions as the "
                "job role's inline default policy; it is attached to that one role and deleted with it")


class BatchEngine(Construct):
    """Compute environment (managed EC2/ECS, min 0 vCPUs), job queue, job definition (multi-node for more
    than one node), job role, KMS-encrypted log group, and job state changes to the alarm topic.

    Built from the cluster's plan (types, nodes, EFA, placement, purchase, job) and its parts (network, security,
    boot). With a shared file system, the hosts mount it at boot (the user data), and the job's container gets it
    as a host volume at the same path, with its variables in the job's environment.
    """

    def __init__(self, scope: Construct, construct_id: str, *, plan: TrainingPlan, parts: ClusterParts) -> None:
        super().__init__(scope, construct_id)
        self._template(plan, parts)
        self._compute_environment(plan, parts)
        self._queue_and_logs(plan, parts)
        self._container(plan, parts)
        self._job_definition(plan)

    def _template(self, plan: TrainingPlan, parts: ClusterParts) -> None:
        """Launch template: Batch requires MIME multipart user data (aws-cdk #6427); the placement group goes on the
        compute environment, and the instance role too (Batch ignores the template's profile). The job containers'
        network: EFA layout with a free card-0 slot, and their group's rules (batch_network)."""
        multipart = ec2.MultipartUserData()
        multipart.add_user_data_part(parts.user_data, ec2.MultipartBody.SHELL_SCRIPT, True)
        self.launch_template, self.placement_group = node_launch_template(self, LaunchTemplateProps(
            spec=plan.spec, role=None, user_data=multipart, security_group=parts.security_group, key=parts.key,
            machine_image=parts.machine_image, storage=plan.storage, root_device_name=plan.root_device_name,
            efa=plan.efa, cluster_placement=plan.cluster_placement, placement_in_template=False))
        slots = batch_node_template(self.launch_template, spec=plan.spec, efa=plan.efa,
                                    security_group=parts.security_group)
        self.task_network = open_task_network(self, vpc=parts.vpc, node_group=parts.security_group, card0_slots=slots)

    def _compute_environment(self, plan: TrainingPlan, parts: ClusterParts) -> None:
        self.max_vcpus = plan.nodes * max(catalog.get(t).vcpus for t in plan.instance_types)
        gpu = plan.spec.accelerator is not None and plan.spec.accelerator.kind == "gpu"
        self.compute_environment = batch.ManagedEc2EcsComputeEnvironment(
            self, "ComputeEnvironment", vpc=parts.vpc, vpc_subnets=ec2.SubnetSelection(subnets=[parts.subnet]),
            # The types go in as strings below: the L2 parses each type's architecture and rejects names
            # such as p6-b200.48xlarge ("Malformed instance type identifier").
            instance_types=[], use_optimal_instance_classes=True,
            launch_template=self.launch_template, instance_role=parts.role, security_groups=[parts.security_group],
            images=[batch.EcsMachineImage(image=parts.machine_image, image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA
                                          if gpu else batch.EcsMachineImageType.ECS_AL2023)],
            minv_cpus=0, maxv_cpus=self.max_vcpus, spot=plan.purchase.uses_spot, replace_compute_environment=True,
            update_to_latest_image_version=False)
        environment = self.compute_environment.node.default_child
        environment.add_property_override("ComputeResources.InstanceTypes", list(plan.instance_types))
        environment.add_property_override("ComputeResources.LaunchTemplate.Version",
                                          self.launch_template.latest_version_number)
        if plan.efa:  # aws-cdk #21577: the group is on every interface of the template
            environment.add_property_deletion_override("ComputeResources.SecurityGroupIds")
        if self.placement_group is not None:
            environment.add_property_override("ComputeResources.PlacementGroup", self.placement_group.ref)

    def _queue_and_logs(self, plan: TrainingPlan, parts: ClusterParts) -> None:
        """The queue, its job state changes to the topic, the KMS-encrypted log group, and the job's role."""
        self.job_queue = batch.JobQueue(self, "JobQueue", priority=1, compute_environments=[
            batch.OrderedComputeEnvironment(compute_environment=self.compute_environment, order=1)],
            job_state_time_limit_actions=runnable_limits(plan.job.runnable_timeout_minutes))
        # Every job that fails reaches the topic, a job cancelled by the queue's time limits included (status FAILED,
        # statusReason "Canceled by JobStateTimeLimit action due to reason: ...").
        events.Rule(self, "JobStateChanges", description=f"{parts.label}: Batch jobs that failed or succeeded",
                    event_pattern=events.EventPattern(
                        source=["aws.batch"], detail_type=["Batch Job State Change"],
                        detail={"status": ["FAILED", "SUCCEEDED"], "jobQueue": [self.job_queue.job_queue_arn]}),
                    targets=[security.TopicTarget(parts.alarm_topic)])
        # Logs: KMS-encrypted, with a retention period (CloudWatch Logs may use the key for this account's log
        # groups in this region only: security.allow_log_encryption).
        self.log_group = security.encrypted_log_group(
            self, "JobLogs", key=parts.key, removal_policy=parts.removal_policy,
            retention=getattr(logs.RetentionDays, LOG_RETENTION[plan.job.log_retention_days]))
        # The job's role: read/write on the checkpoint bucket and use of its key, nothing wider.
        self.job_role = iam.Role(
            self, "JobRole", description=f"{parts.label}: training jobs (checkpoint bucket only)",
            assumed_by=security.ecs_tasks_principal(self))
        self.job_policy = security.data_policy(self, "JobCheckpointPolicy", self.job_role,
                                               bucket=parts.checkpoint_bucket, key=parts.key)
        self.agent_policy = security.ecs_agent_policy(self, "EcsAgentPolicy", parts.role, log_group=self.log_group)

    def _container(self, plan: TrainingPlan, parts: ClusterParts) -> None:
        """The job's container: what the catalog says the type has, the launcher, devices, the shared file system."""
        spec, job = plan.spec, plan.job
        gpu = spec.accelerator is not None and spec.accelerator.kind == "gpu"
        memory = container_memory_mib(spec)
        self.container = batch.EcsEc2ContainerDefinition(
            self, "Container", image=ecs.ContainerImage.from_registry(job.image), cpu=spec.vcpus,
            memory=cdk.Size.mebibytes(memory), gpu=spec.accelerator.count if gpu else None,
            command=launch.inline_command(["--dry-run", "--", "true"]),
            environment={**job_environment(spec, plan.efa, parts.checkpoint_bucket.bucket_name),
                         **(parts.shared_environment or {})},
            job_role=self.job_role,
            linux_parameters=batch.LinuxParameters(self, "LinuxParameters", init_process_enabled=True,
                                                   shared_memory_size=cdk.Size.mebibytes(int(memory * SHARED_MEMORY_SHARE))),
            ulimits=[batch.Ulimit(name=name, soft_limit=limit, hard_limit=limit) for name, limit in ULIMITS],
            logging=ecs.LogDriver.aws_logs(stream_prefix="mlcdk", log_group=self.log_group),
            enable_execute_command=job.shell, secrets=job_secrets(self, job.secrets))
        if job.shell:
            acknowledge_ecs_exec(self.job_role)
        self.container.linux_parameters.add_devices(*(
            batch.Device(host_path=path, container_path=path, permissions=[
                batch.DevicePermission.READ, batch.DevicePermission.WRITE, batch.DevicePermission.MKNOD])
            for path in device_paths(spec, plan.efa)))
        mount = parts.shared_mount_point
        if mount is not None:  # the host mounts the shared file system; the job sees it at the same path
            self.container.add_volume(batch.EcsVolume.host(name="shared-storage", host_path=mount, container_path=mount))
        if (repository := workloads.ecr_repository(job.image)) is not None:
            security.ecr_pull_policy(self, "EcrPullPolicy", [parts.role, self.container.execution_role], *repository)

    def _job_definition(self, plan: TrainingPlan) -> None:
        """Multi-node for more than one node (one open node range), else a single-node ECS job definition."""
        job, nodes = plan.job, plan.nodes
        common = dict(retry_attempts=job.retry_attempts, timeout=cdk.Duration.seconds(round(job.timeout_hours * 3600)),
                      propagate_tags=True, retry_strategies=[
                          batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom(on_status_reason=HOST_FAILURE_REASON)),
                          batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_exit_code="*"))])
        if nodes > 1:
            self.job_definition = batch.MultiNodeJobDefinition(
                self, "JobDefinition", instance_type=ec2.InstanceType(plan.spec.instance_type), main_node=0,
                containers=[batch.MultiNodeContainer(container=self.container, start_node=0, end_node=nodes - 1)],
                **common)
            # One open node range, so `mlcdk submit --nodes N` may run fewer nodes than the cluster has.
            self.job_definition.node.default_child.add_property_override(
                "NodeProperties.NodeRangeProperties.0.TargetNodes", "0:")
        else:
            self.job_definition = batch.EcsJobDefinition(self, "JobDefinition", container=self.container, **common)
        acknowledge(self.container.execution_role, "NIST.800.53.R5-IAMNoInlinePolicy", "aws-cdk's Batch container "
                    "writes the execution role's log permissions (this cluster's one job log group) as its inline "
                    "default policy; it is attached to that one role and deleted with it (IAM User Guide, 'Managed "
                    "policies and inline policies')")
