"""CDK constructs. This is the only part of mlcdk (with mlcdk.stacks) that imports aws_cdk."""

from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.options import PurchaseOptions, ScaleSchedule, StorageOptions
from mlcdk.constructs.training_cluster import TrainingCluster

__all__ = ["PrivateNetwork", "PurchaseOptions", "ScaleSchedule", "StorageOptions", "TrainingCluster"]
