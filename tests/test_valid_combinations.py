"""Property: every valid combination of preset, region, purchase option and size synthesizes and passes
cdk-nag (AwsSolutions) and cfn-lint for its region."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcdk.presets import catalog, model_server, workloads
from mlcdk.settings import read_settings
from mlcdk.stacks import add_stacks
from tests.harness import cli_context, lint, nag_problems, synth

TRAINING = sorted(n for n, p in workloads.builtin_presets().items() if p.task != "inference")
INFERENCE = sorted(n for n, p in workloads.builtin_presets().items() if p.task == "inference")


@st.composite
def combinations(draw):
    inference = draw(st.booleans())
    name = draw(st.sampled_from(INFERENCE if inference else TRAINING))
    preset = workloads.builtin_presets()[name]
    spec = catalog.get(preset.instance_type)
    regions = [r for r in spec.regions if len(spec.offered_azs(r)) >= (2 if inference else 1)]
    context = {"region": draw(st.sampled_from(regions)),
               "stacks": "InferenceStack" if inference else "TrainingStack",
               ("inference_preset" if inference else "preset"): name,
               ("inference_purchase_option" if inference else "purchase_option"):
                   draw(st.sampled_from(["on-demand", "spot", "mixed"]))}
    if inference:
        low = draw(st.integers(0, 3))
        context.update(min_capacity=str(low), max_capacity=str(draw(st.integers(max(low, 1), 6))))
        served = model_server.serves(spec)  # a vLLM DLC drives it
        context["inference_engine"] = draw(st.sampled_from(["ecs", "nodes"])) if served else "nodes"
    else:
        nodes = draw(st.integers(1, 4)) if spec.efa_supported else 1
        context["nodes"] = str(nodes)
        engine = draw(st.sampled_from(["batch", "nodes"]))
        if workloads.engine_purchase_problem(engine, context["purchase_option"], nodes):
            engine = "nodes"  # Batch runs multi-node jobs on demand only, and has no mixed purchase
        context["engine"] = engine
    return context


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=combinations())
def test_every_valid_combination_synthesizes_and_passes_the_gates(context):
    read_settings(context)  # valid by construction: must not raise
    result = synth(lambda app: add_stacks(app, read_settings({k: app.node.try_get_context(k) for k in context})),
                   cli_context(**context))
    assert nag_problems(result) == [], context
    (name,) = result.templates
    assert lint(result.template_paths[name], [context["region"]]) == [], context
