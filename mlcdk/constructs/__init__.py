"""CDK constructs. With mlcdk.stacks, the only part of mlcdk that imports aws_cdk.

The package's public names load lazily (PEP 562), so that the pure modules beside the constructs (the plan steps
``plan_training`` and ``plan_fleet``, and the rules they call) import without aws_cdk and its jsii kernel.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "GuardrailOptions": "mlcdk.constructs.guardrail_options",
    "Guardrails": "mlcdk.constructs.guardrails",
    "FleetAlarmOptions": "mlcdk.constructs.fleet_options",
    "InferenceFleet": "mlcdk.constructs.inference_fleet",
    "LoadBalancerOptions": "mlcdk.constructs.fleet_options",
    "ScalingOptions": "mlcdk.constructs.fleet_options",
    "ModelOptions": "mlcdk.constructs.model",
    "PrivateNetwork": "mlcdk.constructs.network",
    "CapacityOptions": "mlcdk.constructs.options",
    "DataRepositoryLink": "mlcdk.constructs.options",
    "ExistingFileSystem": "mlcdk.constructs.options",
    "PurchaseOptions": "mlcdk.constructs.options",
    "ScaleSchedule": "mlcdk.constructs.options",
    "SharedStorageOptions": "mlcdk.constructs.options",
    "StorageOptions": "mlcdk.constructs.options",
    "TrainingCluster": "mlcdk.constructs.training_cluster",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlcdk.constructs' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
