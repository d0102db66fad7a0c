"""Ready-made stacks that app.py deploys, configured from CDK context (see mlcdk.settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mlcdk.constructs.inference_fleet import InferenceFleet
from mlcdk.constructs.model import ModelOptions
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.options import PurchaseOptions, SharedStorageOptions, StorageOptions
from mlcdk.constructs.training_cluster import TrainingCluster
from mlcdk.presets.workloads import default_machine_image
from mlcdk.settings import (
    CONTEXT_KEYS, EMULATOR_AMI_PARAMETER, AppSettings, ModelSettings, WorkloadSettings, read_settings,
)

TRAINING_STACK = "TrainingStack"
INFERENCE_STACK = "InferenceStack"


class _WorkloadStack(cdk.Stack):
    """A stack holding one workload's network (and, as they land, its cluster or fleet)."""

    def __init__(self, scope: Construct, construct_id: str, *, workload: WorkloadSettings,
                 alarm_emails: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.workload = workload
        self.alarm_emails = alarm_emails
        self.network = PrivateNetwork(self, "Network", availability_zone_ids=workload.availability_zone_ids)
        cdk.CfnOutput(self, "Preset", value=workload.preset.name, description="mlcdk workload preset")
        cdk.CfnOutput(self, "InstanceType", value=workload.instance_type, description="EC2 instance type")
        if workload.availability_zone_ids:
            cdk.CfnOutput(self, "AvailabilityZoneIds", value=",".join(workload.availability_zone_ids),
                          description="AZ IDs that offer the instance type, where the private subnets are")
        cdk.Tags.of(self).add("mlcdk:workload", workload.preset.name)


#: Stack outputs through which `mlcdk submit`, `jobs`, `logs` and `cancel` find a Batch cluster's resources.
JOB_OUTPUTS = ("JobQueue", "JobDefinition", "JobLogGroup", "MaxNodes")


class TrainingStack(_WorkloadStack):
    """The training side: a TrainingCluster from context keys ``preset``, ``instance_type``, ``nodes``, ``engine``
    and ``shared_storage_gib`` (an FSx for Lustre file system at /fsx, output as SharedFileSystem). With the Batch
    engine it outputs the job queue, job definition, log group and node count that the CLI's job commands read
    (JOB_OUTPUTS)."""

    def __init__(self, scope: Construct, construct_id: str, *, workload: WorkloadSettings,
                 alarm_emails: tuple[str, ...] = (), removal_policy: str = "retain", emulator: bool = False,
                 engine: str = "batch", shared_storage_gib: int | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, workload=workload, alarm_emails=alarm_emails, **kwargs)
        self.cluster = TrainingCluster(
            self, "Cluster", preset=workload.preset, instance_type=workload.instance_type, nodes=workload.nodes,
            engine=engine, vpc=self.network.vpc, alarm_emails=alarm_emails, removal_policy=_removal(removal_policy),
            purchase=_purchase(workload),
            machine_image=ec2.MachineImage.from_ssm_parameter(EMULATOR_AMI_PARAMETER) if emulator else None,
            storage=StorageOptions(root_device_name=_catalog_root_device(workload, engine)) if emulator else None,
            shared_storage=SharedStorageOptions(storage_capacity_gib=shared_storage_gib) if shared_storage_gib else None)
        cdk.CfnOutput(self, "CheckpointBucket", value=self.cluster.checkpoint_bucket.bucket_name)
        if self.cluster.shared_storage is not None:
            cdk.CfnOutput(self, "SharedFileSystem", value=self.cluster.shared_storage.file_system_id,
                          description=f"FSx for Lustre file system mounted at {self.cluster.shared_storage.mount_point}")
        if self.cluster.auto_scaling_group is not None:
            cdk.CfnOutput(self, "AutoScalingGroup", value=self.cluster.auto_scaling_group.auto_scaling_group_name)
        else:
            queue, definition, logs, nodes = JOB_OUTPUTS
            cdk.CfnOutput(self, queue, value=self.cluster.job_queue.job_queue_arn, description="Batch job queue")
            cdk.CfnOutput(self, definition, value=self.cluster.job_definition.job_definition_arn,
                          description="Batch job definition (multi-node for more than one node)")
            cdk.CfnOutput(self, logs, value=self.cluster.log_group.log_group_name, description="job log group")
            cdk.CfnOutput(self, nodes, value=str(self.cluster.nodes), description="the most nodes one job may use")


class InferenceStack(_WorkloadStack):
    """The serving side: an InferenceFleet from context keys ``inference_preset``, ``inference_instance_type``,
    ``min_capacity``, ``max_capacity`` and ``inference_engine``. With engine ecs (the default) it serves ``model``
    (default: TinyLlama/TinyLlama-1.1B-Chat-v1.0, Apache-2.0) with vLLM and outputs its served model name; with
    engine nodes it deploys the group and load balancer for a server you start on the nodes (warned at synth)."""

    def __init__(self, scope: Construct, construct_id: str, *, workload: WorkloadSettings,
                 alarm_emails: tuple[str, ...] = (), removal_policy: str = "retain", emulator: bool = False,
                 engine: str = "ecs", model: ModelSettings | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, workload=workload, alarm_emails=alarm_emails, **kwargs)
        self.fleet = InferenceFleet(
            self, "Fleet", preset=workload.preset, instance_type=workload.instance_type, engine=engine,
            model=_model_options(model) if engine == "ecs" else None,
            min_capacity=workload.min_capacity, max_capacity=workload.max_capacity, vpc=self.network.vpc,
            alarm_emails=alarm_emails, removal_policy=_removal(removal_policy), purchase=_purchase(workload),
            machine_image=ec2.MachineImage.from_ssm_parameter(EMULATOR_AMI_PARAMETER) if emulator else None,
            storage=StorageOptions(root_device_name=_catalog_root_device(
                workload, "batch" if engine == "ecs" else "nodes")) if emulator else None)
        cdk.CfnOutput(self, "Endpoint", value=self.fleet.load_balancer.load_balancer_dns_name,
                      description="the fleet's internal load balancer (HTTP on 80)")
        if self.fleet.model_plan is not None:
            cdk.CfnOutput(self, "ServedModel", value=self.fleet.model_plan.served_model_name,
                          description="the name to put in the 'model' field of OpenAI-style requests")


def _model_options(model: ModelSettings | None) -> ModelOptions:
    from mlcdk.presets import model_server

    model = model or ModelSettings(model_server.facts().default_model)
    return ModelOptions(source=model.source, architecture=model.architecture, params=model.params,
                        hf_token_secret=model.token_secret_arn)


def _purchase(workload: WorkloadSettings) -> PurchaseOptions | None:
    """The preset's purchase settings, unless a context flag chose another option."""
    if workload.purchase_option == workload.preset.purchase_option:
        return None
    base = workload.preset.on_demand_base_capacity if workload.purchase_option == "mixed" else 0
    return PurchaseOptions(option=workload.purchase_option, on_demand_base_capacity=base)


def _removal(policy: str) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.DESTROY if policy == "destroy" else cdk.RemovalPolicy.RETAIN


def _catalog_root_device(workload: WorkloadSettings, engine: str) -> str:
    """Under the emulator only the AMI changes; the root device stays the catalog AMI's."""
    return default_machine_image(workload.spec, engine).root_device_name


def settings_from_context(app: cdk.App, environ: Mapping[str, str] | None = None) -> AppSettings:
    """Read and check every mlcdk context key of ``app`` (raises ConfigurationError)."""
    everything = app.node.get_all_context()  # one jsii round trip, not one per key
    context = {key: everything.get(key) for key in CONTEXT_KEYS}
    return read_settings(context, os.environ if environ is None else environ)


def add_stacks(app: cdk.App, settings: AppSettings) -> list[cdk.Stack]:
    """Add the selected stacks (default: TrainingStack and InferenceStack) to ``app``, in the settings' region
    (never env-agnostic: their subnets are pinned to the AZ IDs of that region that offer the instance type)."""
    env = cdk.Environment(account=settings.account, region=settings.region)
    common = dict(env=env, alarm_emails=settings.alarm_emails, removal_policy=settings.removal_policy,
                  emulator=settings.emulator)
    stacks: list[cdk.Stack] = []
    if TRAINING_STACK in settings.stacks:
        stacks.append(TrainingStack(app, TRAINING_STACK, workload=settings.training, engine=settings.engine,
                                    shared_storage_gib=settings.shared_storage_gib,
                                    description="mlcdk training cluster and its network", **common))
    if INFERENCE_STACK in settings.stacks:
        stacks.append(InferenceStack(app, INFERENCE_STACK, workload=settings.inference,
                                     engine=settings.inference_engine, model=settings.model,
                                     description="mlcdk inference fleet and its network", **common))
    return stacks
