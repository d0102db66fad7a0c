"""CDK constructs. This is the only part of mlcdk (with mlcdk.stacks) that imports aws_cdk."""

from mlcdk.constructs.guardrails import GuardrailOptions, Guardrails
from mlcdk.constructs.inference_fleet import FleetAlarmOptions, InferenceFleet, LoadBalancerOptions, ScalingOptions
from mlcdk.constructs.model import ModelOptions
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.options import (
    CapacityOptions, DataRepositoryLink, ExistingFileSystem, PurchaseOptions, ScaleSchedule, SharedStorageOptions,
    StorageOptions,
)
from mlcdk.constructs.training_cluster import TrainingCluster

__all__ = ["CapacityOptions", "FleetAlarmOptions", "GuardrailOptions", "Guardrails", "InferenceFleet", "LoadBalancerOptions",
           "ModelOptions", "PrivateNetwork", "PurchaseOptions", "ScaleSchedule", "ScalingOptions", "StorageOptions", "TrainingCluster",
           "DataRepositoryLink", "ExistingFileSystem", "SharedStorageOptions"]
