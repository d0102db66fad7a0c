"""The advisor's top recommendation, resolved for the region of the stack a construct goes in."""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
from constructs import Construct

from mlcdk.advice.advisor import advise
from mlcdk.advice.results import Recommendation
from mlcdk.constructs.options import PurchaseOptions
from mlcdk.constructs.validation import concrete
from mlcdk.errors import ConfigurationError
from mlcdk.presets.sizing import Workload


def recommend_for_stack(scope: Construct, workload: Workload, *, training: bool) -> tuple[Recommendation, PurchaseOptions]:
    """The cheapest configuration that fits ``workload`` in the stack's region (or, for an env-agnostic
    stack, in the workload's own regions), and the purchase option it was priced at. A workload whose
    ``regions`` leave out the stack's region is refused: it would be sized and priced for somewhere else."""
    if training != workload.trains:
        kind = "TrainingCluster" if training else "InferenceFleet"
        raise ConfigurationError(f"workload.task ({workload.task!r}) does not suit {kind}; use "
                                 f"{'InferenceFleet' if training else 'TrainingCluster'}.from_workload")
    region = cdk.Stack.of(scope).region
    if concrete(region) and workload.regions and region not in workload.regions:
        raise ConfigurationError(
            f"workload.regions ({', '.join(workload.regions)}) does not include the stack's region ({region}); "
            f"give the workload regions={region!r}, leave regions out, or put the construct in a stack for "
            f"{' or '.join(workload.regions)}")
    if concrete(region):
        workload = dataclasses.replace(workload, regions=(region,))
    elif not workload.regions:
        raise ConfigurationError("workload.regions: the stack is env-agnostic, so give the workload its region(s)")
    advice = advise(workload)
    if not advice:
        hint = advice.suggestion()
        where = ", ".join(workload.regions)
        raise ConfigurationError(f"workload ({workload.describe()} in {where}): "
                                 + (hint.message() if hint else "nothing in the catalog fits"))
    option = "spot" if workload.purchase_option == "spot" else "on-demand"
    return advice[0], PurchaseOptions(option=option)


def workload_for_model(model, *, regions=()) -> Workload:
    """The advisor's inference workload for a ``ModelOptions``: its architecture (or parameters), precision, context
    and concurrent sequences (Neuron's compiled default is not known before the type is: one sequence), so the
    advisor sizes what the server will run."""
    from mlcdk.constructs.model_plan import model_workload

    return model_workload(model, regions=regions)
