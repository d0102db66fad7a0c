"""EcsEngine: an InferenceFleet's Amazon ECS side, which runs the model server on the fleet's Auto Scaling group.

``engine="ecs"`` (the default). ECS is the existing service that runs the containers; mlcdk writes no scheduler:

- **Capacity:** an ECS cluster whose capacity provider is the fleet's group, with managed scaling (ECS sizes the
  group to the tasks it must place) and managed termination protection (the group's instances are protected from
  scale-in, and ECS releases only instances without tasks; ECS developer guide, "Auto Scaling group capacity
  providers"; the API reference's AutoScalingGroupProvider: termination protection needs managed scaling and
  instances protected from scale-in). Managed draining drains a node before the group terminates it.
- **Service:** an EC2 service (``bridge`` networking, the server's port as the host port, one task per node)
  registered with the fleet's target group, rolling deployments (100% healthy minimum, 200% maximum: a new task
  starts before an old one stops; the group may grow by one node for it) with the deployment circuit breaker and
  rollback (ECS developer guide, "Deployment circuit breaker"), so a bad model or image rolls back instead of
  taking the fleet down. A model or image change is a new task definition revision: the nodes stay.
- **Task:** the vLLM DLC with ``vllm serve`` and the derived arguments (mlcdk.constructs.model), every GPU
  (``resourceRequirements`` GPU) or every Neuron device (``/dev/neuronN`` through ``linuxParameters.devices``, the
  ECS developer guide's "Example Neuron task definitions" for EC2), shared memory for the tensor-parallel workers
  (vLLM docs, "Using Docker": ``--ipc=host`` or ``--shm-size``), a container health check on the readiness path,
  logs to a KMS-encrypted log group, and the model cache on the node (a host volume) so a restarted task does not
  download or compile again. An S3 model is copied by an ``aws s3 sync`` container that runs first, with the task
  role, which may read that prefix only. A gated model's token comes from Secrets Manager through the execution
  role at start; it is never in the template or the user data.
- **Health:** the service ignores load balancer and container health checks for the grace period
  (``healthCheckGracePeriodSeconds``, which covers both; ECS API reference, CreateService), computed from the
  model's size, the node's network and disk throughput and, on Neuron, the compile time
  (:func:`mlcdk.presets.model_server.startup_estimate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mlcdk.constructs import security
from mlcdk.constructs.batch_engine import CONTAINER_MEMORY_SHARE, SHARED_MEMORY_SHARE
from mlcdk.constructs.model_plan import CONTAINER_CACHE, ModelPlan, s3_model_path
from mlcdk.constructs.plan_fleet import FleetPlan
from mlcdk.constructs.nag import acknowledge, resource_finding
from mlcdk.presets import model_server, workloads
from mlcdk.presets.catalog import InstanceSpec

#: Memory of the S3 copy container (aws s3 sync streams objects; it holds a few parts at a time).
DOWNLOADER_MEMORY_MIB = 512
#: The container health check: every 30 s, 5 s to answer, 3 failures in a row make the container unhealthy; the
#: start period is the grace period up to ECS's limit of 300 s (the service's grace period covers the rest).
HEALTH_INTERVAL_S, HEALTH_TIMEOUT_S, HEALTH_RETRIES, MAX_START_PERIOD_S = 30, 5, 3, 300
#: Open files for many client connections; pinned memory for the Neuron runtime's and NCCL's DMA buffers.
ULIMITS = ((ecs.UlimitName.NOFILE, 65_536), (ecs.UlimitName.MEMLOCK, -1))


@dataclass(frozen=True)
class EcsEngineProps:
    """Everything the engine needs: the fleet's plan (type, model, port, health check, cache), decided before it is
    built, and the parts it builds on."""

    fleet: FleetPlan
    vpc: ec2.IVpc
    key: kms.IKey
    grace: cdk.Duration
    log_retention: logs.RetentionDays
    removal_policy: cdk.RemovalPolicy
    label: str

    @property
    def spec(self) -> InstanceSpec:
        return self.fleet.spec

    @property
    def plan(self) -> ModelPlan:
        """The model's plan (engine="ecs" always has one)."""
        return self.fleet.model

    @property
    def port(self) -> int:
        return self.fleet.port

    @property
    def health_check_path(self) -> str:
        return self.fleet.request.health_check_path

    @property
    def cache_host_path(self) -> str:
        return self.fleet.cache.host_path


class EcsEngine(Construct):
    """The ECS cluster, task definition, roles and logs (built first: the nodes' user data names the cluster), then
    :meth:`run_on` the fleet's group (capacity provider and service) and :meth:`attach` to its target group.

    Attributes: ``cluster``, ``task_definition``, ``container``, ``task_role``, ``log_group``,
    ``metrics_log_group`` (the CloudWatch agent's embedded-metric events of the server's Prometheus metrics), and
    after :meth:`run_on` ``capacity_provider`` and ``service``. Child IDs are fixed words.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: EcsEngineProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self.cluster = ecs.Cluster(self, "Cluster", vpc=props.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.log_group = security.encrypted_log_group(self, "ServerLogs", key=props.key, retention=props.log_retention,
                                                      removal_policy=props.removal_policy)
        self.metrics_log_group = security.encrypted_log_group(self, "ServerMetrics", key=props.key,
                                                              retention=props.log_retention,
                                                              removal_policy=props.removal_policy)
        self.task_role = iam.Role(self, "TaskRole", assumed_by=security.ecs_tasks_principal(self),
                                  description=f"{props.label}: model servers (read the model source only)")
        self.task_definition = ecs.Ec2TaskDefinition(self, "TaskDefinition", network_mode=ecs.NetworkMode.BRIDGE,
                                                     task_role=self.task_role)
        self.task_definition.add_volume(name="model-cache", host=ecs.Host(source_path=props.cache_host_path))
        self.container = self._server(props)
        if props.plan.source.kind == "s3":
            self._downloader(props)
        self._token(props.plan)
        acknowledge(self.task_definition, "AwsSolutions-ECS2", "the server's environment holds cache paths, usage "
                    "statistics opt-outs and a compile timeout, no secret; the one secret, a gated model's token, comes "
                    "from Secrets Manager (ECS secrets)")
        acknowledge(self.task_definition.obtain_execution_role(), "NIST.800.53.R5-IAMNoInlinePolicy", "aws-cdk writes "
                    "the execution role's log permissions (this fleet's server log group) and, for a gated model, read "
                    "access to its one token secret as the role's default policy; attached to that one role and "
                    "deleted with it")
        self.capacity_provider: ecs.AsgCapacityProvider | None = None
        self.service: ecs.Ec2Service | None = None

    def node_policies(self, role: iam.IRole) -> list[iam.Policy]:
        """What the nodes' role needs: the ECS agent on this cluster, and writing the server's metric events."""
        return [security.ecs_cluster_agent_policy(self, "AgentPolicy", role, cluster_arn=self.cluster.cluster_arn,
                                                  cluster_name=self.cluster.cluster_name),
                security.log_writer_policy(self, "MetricsPolicy", role, log_group=self.metrics_log_group,
                                           purpose="the CloudWatch agent's embedded-metric events of the model server")]

    def run_on(self, auto_scaling_group: autoscaling.AutoScalingGroup, desired_count: int | None) -> ecs.Ec2Service:
        """The capacity provider on ``auto_scaling_group`` and the service. ``desired_count`` None: a scaling policy
        owns the task count."""
        self.capacity_provider = ecs.AsgCapacityProvider(
            self, "CapacityProvider", auto_scaling_group=auto_scaling_group, enable_managed_scaling=True,
            enable_managed_termination_protection=True, enable_managed_draining=True, target_capacity_percent=100)
        associations = ecs.CfnClusterCapacityProviderAssociations(
            self, "CapacityProviders", cluster=self.cluster.cluster_name,
            capacity_providers=[self.capacity_provider.capacity_provider_name],
            default_capacity_provider_strategy=[ecs.CfnClusterCapacityProviderAssociations.CapacityProviderStrategyProperty(
                capacity_provider=self.capacity_provider.capacity_provider_name, weight=1)])
        self.service = self._service(self.props, associations, desired_count)
        return self.service

    # ----------------------------------------------------------------------------------------

    def _server(self, props: EcsEngineProps) -> ecs.ContainerDefinition:
        spec, plan = props.spec, props.plan
        memory = int(spec.memory_mib * CONTAINER_MEMORY_SHARE) - (DOWNLOADER_MEMORY_MIB if plan.source.kind == "s3" else 0)
        gpu = spec.accelerator is not None and spec.accelerator.kind == "gpu"
        linux = ecs.LinuxParameters(self, "LinuxParameters", init_process_enabled=True,
                                    shared_memory_size=int(memory * SHARED_MEMORY_SHARE))
        if spec.accelerator is not None and spec.accelerator.kind == "neuron":
            linux.add_devices(*(ecs.Device(host_path=f"/dev/neuron{i}", container_path=f"/dev/neuron{i}",
                                           permissions=[ecs.DevicePermission.READ, ecs.DevicePermission.WRITE])
                                for i in range(spec.accelerator.count)))
        start_period = min(props.grace.to_seconds(), MAX_START_PERIOD_S)
        probe = (f"python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{props.port}"
                 f"{props.health_check_path}', timeout={HEALTH_TIMEOUT_S - 1})\"")
        container = self.task_definition.add_container(
            "Server", image=ecs.ContainerImage.from_registry(plan.image), entry_point=list(plan.entry_point),
            command=list(plan.command) or None, memory_limit_mib=memory, gpu_count=spec.accelerator.count if gpu else None,
            linux_parameters=linux, environment=self._environment(plan, props),
            ulimits=[ecs.Ulimit(name=name, soft_limit=limit, hard_limit=limit) for name, limit in ULIMITS],
            port_mappings=[ecs.PortMapping(container_port=props.port, host_port=props.port)],
            health_check=ecs.HealthCheck(command=["CMD-SHELL", probe], interval=cdk.Duration.seconds(HEALTH_INTERVAL_S),
                                         timeout=cdk.Duration.seconds(HEALTH_TIMEOUT_S), retries=HEALTH_RETRIES,
                                         start_period=cdk.Duration.seconds(start_period)),
            logging=ecs.LogDriver.aws_logs(stream_prefix="server", log_group=self.log_group))
        container.add_mount_points(ecs.MountPoint(source_volume="model-cache", container_path=CONTAINER_CACHE,
                                                  read_only=False))
        if (repository := workloads.ecr_repository(plan.image)) is not None:
            security.ecr_pull_policy(self, "EcrPullPolicy", [self.task_definition.obtain_execution_role()], *repository)
        return container

    @staticmethod
    def _environment(plan: ModelPlan, props: EcsEngineProps) -> dict[str, str]:
        """Caches on the host volume (the Hugging Face download, vLLM's and Neuron's compile caches), usage
        statistics off, and for vLLM Neuron a compile timeout as long as the grace period (its default, 600 s,
        would stop a large model's first compile: vLLM Neuron quickstart)."""
        env = {**model_server.facts().environment, "HF_HOME": f"{CONTAINER_CACHE}/huggingface",
               "VLLM_CACHE_ROOT": f"{CONTAINER_CACHE}/vllm"}
        if plan.server == "vllm-neuron":
            env["VLLM_NEURON_COMPILATION_TIMEOUT"] = str(int(props.grace.to_seconds()))
        return env

    def _downloader(self, props: EcsEngineProps) -> None:
        """``aws s3 sync`` of the model prefix into the cache, before the server starts; the task role may read that
        prefix only (and decrypt it through S3 when the bucket uses a KMS key)."""
        source, stack = props.plan.source, cdk.Stack.of(self)
        target = s3_model_path(source)
        downloader = self.task_definition.add_container(
            "ModelDownload", image=ecs.ContainerImage.from_registry(model_server.facts().downloader_image), essential=False,
            command=["s3", "sync", f"s3://{source.bucket}/{source.prefix}".rstrip("/"), target, "--only-show-errors"],
            memory_limit_mib=DOWNLOADER_MEMORY_MIB, start_timeout=props.grace, environment={"AWS_REGION": stack.region},
            logging=ecs.LogDriver.aws_logs(stream_prefix="download", log_group=self.log_group))
        downloader.add_mount_points(ecs.MountPoint(source_volume="model-cache", container_path=CONTAINER_CACHE,
                                                  read_only=False))
        self.container.add_container_dependencies(ecs.ContainerDependency(
            container=downloader, condition=ecs.ContainerDependencyCondition.SUCCESS))
        bucket_arn = f"arn:{stack.partition}:s3:::{source.bucket}"
        objects = f"{bucket_arn}/{source.prefix}/*" if source.prefix else f"{bucket_arn}/*"
        listing = {"StringLike": {"s3:prefix": [f"{source.prefix}/*", source.prefix]}} if source.prefix else None
        policy = iam.Policy(self, "ModelReadPolicy", roles=[self.task_role], statements=[
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn], conditions=listing),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]),
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=["*"], conditions={
                "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"{bucket_arn}/{source.prefix}/*"
                                                                    if source.prefix else f"{bucket_arn}/*"]}})])
        acknowledge(policy, "AwsSolutions-IAM5", "read-only access to the model's S3 prefix: object names are the "
                    "model's files, not known at deploy time", finding=resource_finding(policy, objects))
        acknowledge(policy, "AwsSolutions-IAM5", "kms:Decrypt only through S3 (kms:ViaService) and only for objects "
                    "under the model prefix (the S3 encryption context); the bucket's key is not known to the app",
                    finding="Resource::*")
        security.inline_policy(policy, "read access of the model servers' task role to the model's S3 prefix")

    def _token(self, plan: ModelPlan) -> None:
        """A gated model's Hugging Face token: ECS reads the secret with the execution role when the container
        starts and sets HF_TOKEN (ECS developer guide, "Pass Secrets Manager secrets through environment
        variables"). Only the secret's ARN is in the template."""
        secret = plan.options.hf_token_secret
        if secret is None:
            return
        if isinstance(secret, str):  # a complete ARN (checked by plan_model)
            secret = secretsmanager.Secret.from_secret_complete_arn(self, "HfTokenSecret", secret)
        self.container.add_secret("HF_TOKEN", ecs.Secret.from_secrets_manager(secret))

    def _service(self, props: EcsEngineProps, associations: ecs.CfnClusterCapacityProviderAssociations,
                 desired_count: int | None) -> ecs.Ec2Service:
        # The L2 service asks its cluster for EC2 capacity that only addAsgCapacityProvider records, and that method
        # would also rewrite the group's user data and grant its role ecs:Submit* and logs:* on every resource. The
        # capacity provider is associated above instead, and the service sees the same cluster through a reference
        # that declares the capacity.
        with_capacity = ecs.Cluster.from_cluster_attributes(
            self, "ClusterWithCapacity", cluster_name=self.cluster.cluster_name, cluster_arn=self.cluster.cluster_arn,
            vpc=props.vpc, has_ec2_capacity=True)
        service = ecs.Ec2Service(
            self, "Service", cluster=with_capacity, task_definition=self.task_definition,
            desired_count=desired_count if desired_count is not None else 1,
            min_healthy_percent=100, max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(
                capacity_provider=self.capacity_provider.capacity_provider_name, weight=1)],
            placement_constraints=[ecs.PlacementConstraint.distinct_instances()],
            health_check_grace_period=props.grace, enable_ecs_managed_tags=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE)
        if desired_count is None:
            # A scaling policy owns the count: a deploy must not reset it (CloudFormation starts a new service at 1).
            service.node.default_child.add_property_deletion_override("DesiredCount")
        service.node.add_dependency(associations)
        return service

    def attach(self, target_group: elbv2.ITargetGroup) -> None:
        """Register the server container's port with the fleet's target group."""
        if isinstance(target_group, elbv2.ApplicationTargetGroup):
            self.service.attach_to_application_target_group(target_group)
        else:
            self.service.attach_to_network_target_group(target_group)

