"""mlcdk: AWS CDK constructs for ML training clusters and inference fleets, with an instance catalog.

``import mlcdk`` is cheap: it does not load aws_cdk (and so does not start the jsii kernel). The
constructs are imported on first use, e.g. ``from mlcdk import PrivateNetwork``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from mlcdk.errors import ConfigurationError

__version__ = "0.1.0"

# Public names that live in modules importing aws_cdk; resolved lazily (PEP 562).
_LAZY = {
    "PrivateNetwork": "mlcdk.constructs.network",
    "TrainingCluster": "mlcdk.constructs.training_cluster",
    "InferenceFleet": "mlcdk.constructs.inference_fleet",
    "LoadBalancerOptions": "mlcdk.constructs.inference_fleet",
    "ScalingOptions": "mlcdk.constructs.inference_fleet",
    "FleetAlarmOptions": "mlcdk.constructs.inference_fleet",
    "ModelOptions": "mlcdk.constructs.model",
    "GuardrailOptions": "mlcdk.constructs.guardrail_options",
    "PurchaseOptions": "mlcdk.constructs.options",
    "CapacityOptions": "mlcdk.constructs.options",
    "JobOptions": "mlcdk.constructs.options",
    "StorageOptions": "mlcdk.constructs.options",
    "SharedStorageOptions": "mlcdk.constructs.options",
    "DataRepositoryLink": "mlcdk.constructs.options",
    "ExistingFileSystem": "mlcdk.constructs.options",
    "ScaleSchedule": "mlcdk.constructs.options",
    "TrainingStack": "mlcdk.stacks",
    "load_presets": "mlcdk.presets.workloads",
    "InferenceStack": "mlcdk.stacks",
}

if TYPE_CHECKING:  # pragma: no cover
    from mlcdk.constructs.guardrails import GuardrailOptions
    from mlcdk.constructs.inference_fleet import FleetAlarmOptions, InferenceFleet, LoadBalancerOptions, ScalingOptions
    from mlcdk.constructs.model import ModelOptions
    from mlcdk.constructs.network import PrivateNetwork
    from mlcdk.constructs.options import (
        CapacityOptions, DataRepositoryLink, ExistingFileSystem, JobOptions, PurchaseOptions, ScaleSchedule,
        SharedStorageOptions, StorageOptions,
    )
    from mlcdk.constructs.training_cluster import TrainingCluster
    from mlcdk.presets.workloads import load_presets
    from mlcdk.stacks import InferenceStack, TrainingStack

__all__ = ["ConfigurationError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlcdk' has no attribute {name!r}")
    return getattr(import_module(module), name)
