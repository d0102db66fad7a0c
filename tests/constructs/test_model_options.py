"""ModelOptions: bad input is refused before anything is built; from_workload carries the advisor's sizing through;
the default app never runs an ELB-health-checked group without a server; a model change keeps the nodes."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest

from mlcdk import ConfigurationError, InferenceFleet, ModelOptions, ScalingOptions, StorageOptions
from mlcdk.advice.advisor import advise
from mlcdk.presets import catalog
from mlcdk.presets.sizing import Workload
from tests.harness import assert_refused, cli_context, synth

TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbC123"
TINY = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


def model(**kwargs) -> ModelOptions:
    return ModelOptions(**{"source": TINY, **kwargs})


#: (id, InferenceFleet keyword arguments, the message that must be raised)
BAD = [
    ("too-large-for-the-type", dict(instance_type="inf2.xlarge", model=model(
        source="meta-llama/Llama-3.1-70B-Instruct", architecture="llama-3.1-70b", hf_token_secret=TOKEN_ARN)),
     r"llama-3.1-70b bf16 \(4,096-token context x 4 sequence\(s\)\) does not fit inf2.xlarge: needs 150.2 GiB; "
     r"one node holds 1 x 28.8 GiB \(90% of 1 x 32.0 GiB\)"),
    ("gated-without-a-secret", dict(instance_type="g6e.12xlarge", model=model(
        source="meta-llama/Llama-3.1-8B-Instruct", architecture="llama-3.1-8b")),
     r"model.hf_token_secret: meta-llama/Llama-3.1-8B-Instruct is a gated model"),
    ("declared-gated-without-a-secret", dict(instance_type="g6e.12xlarge", model=model(gated=True)),
     r"model.hf_token_secret: TinyLlama/TinyLlama-1.1B-Chat-v1.0 is a gated model"),
    ("a-token-instead-of-its-secret", dict(instance_type="g6e.12xlarge", model=model(
        hf_token_secret="hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")),
     r"model.hf_token_secret \('hf_AbC.*must be a Secrets Manager secret or its complete ARN .*never the token itself"),
    ("served-name-that-is-an-option", dict(instance_type="g6e.12xlarge", model=model(
        served_model_name="--trust-remote-code")),
     r"model.served_model_name \('--trust-remote-code'\) must not begin with '-': it follows --served-model-name"),
    # One secret-ARN rule with job.secrets (mlcdk.presets.secrets.SECRET_ARN): the model's looser copy took this.
    ("secret-arn-without-a-region", dict(instance_type="g6e.12xlarge", model=model(
        hf_token_secret="arn:aws:secretsmanager:useast1:123456789012:secret:hf-token-AbC123")),
     r"model.hf_token_secret \('arn:aw'\.\.\. \(66 characters\)\) must be a Secrets Manager secret or its complete ARN"),
    ("s3-bucket-with-capitals", dict(instance_type="g6e.12xlarge", model=model(source="s3://Acme_Models/llama")),
     r"model.source \('s3://Acme_Models/llama'\) is not an S3 URI"),
    ("s3-scheme-with-one-slash", dict(instance_type="g6e.12xlarge", model=model(source="s3:/acme-models/llama")),
     r"model.source \('s3:/acme-models/llama'\) must be s3://"),
    ("s3-prefix-with-a-space", dict(instance_type="g6e.12xlarge", model=model(source="s3://acme-models/my model")),
     r"model.source \('s3://acme-models/my model'\) is not an S3 URI"),
    ("s3-bucket-reserved", dict(instance_type="g6e.12xlarge", model=model(source="s3://xn--models/llama")),
     r"model.source \('s3://xn--models/llama'\) has the bucket 'xn--models', which must not begin with xn--"),
    ("s3-prefix-with-shell-characters", dict(instance_type="g6e.12xlarge", model=model(source="s3://acme-models/$(reboot)")),
     r"model.source \('s3://acme-models/\$\(reboot\)'\) its key holds '\$'"),
    ("s3-prefix-with-an-iam-wildcard", dict(instance_type="g6e.12xlarge", model=model(source="s3://acme-models/*")),
     r"model.source \('s3://acme-models/\*'\) holds '\*', which IAM reads as a wildcard in the task role's read "
     r"access"),
    ("model-id-with-three-parts", dict(instance_type="g6e.12xlarge", model=model(source="org/name/extra")),
     r"model.source \('org/name/extra'\) must be s3://"),
    ("model-id-with-a-space", dict(instance_type="g6e.12xlarge", model=model(source="meta llama/Llama-3")),
     r"model.source \('meta llama/Llama-3'\)"),
    ("model-id-ending-in-git", dict(instance_type="g6e.12xlarge", model=model(source="org/model.git")),
     r"model.source \('org/model.git'\)"),
    ("no-context", dict(instance_type="inf2.xlarge", model=model(context_tokens=0)),
     r"model.context_tokens \(0\) must be a whole number from 1 to 10000000"),
    ("no-sequences", dict(instance_type="inf2.xlarge", model=model(max_concurrent_sequences=0)),
     r"model.max_concurrent_sequences \(0\) must be a whole number from 1 to 1000000"),
    ("context-beyond-the-models", dict(instance_type="inf2.xlarge", model=model(context_tokens=4096)),
     r"model.context_tokens \(4096\) exceeds tinyllama-1.1b's maximum context of 2048 tokens"),
    ("image-with-a-space", dict(instance_type="g6e.12xlarge", model=model(
        image="public.ecr.aws/acme/vllm:1.0 --privileged")),
     r"model.image \('public.ecr.aws/acme/vllm:1.0 --privileged'\) is not a valid image reference"),
    ("image-with-a-newline", dict(instance_type="g6e.12xlarge", model=model(
        image="public.ecr.aws/acme/vllm:1.0\nrm -rf /")),
     r"model.image .* must be a string without control or format characters \(it holds '\\n'"),
    ("image-with-a-trailing-newline", dict(instance_type="g6e.12xlarge", model=model(
        image="public.ecr.aws/acme/vllm:1.0\n")),
     r"model.image .* without leading or trailing whitespace"),
    ("unknown-model-without-a-size", dict(instance_type="g6e.12xlarge", model=model(source="s3://acme-models/x")),
     r"model: mlcdk cannot size 's3://acme-models/x'"),
    ("heads-that-do-not-divide-over-the-gpus", dict(instance_type="p5.48xlarge", model=model(source="Qwen/Qwen2.5-7B")),
     r"qwen2.5-7b has 28 attention heads, which do not divide over the 8 GPUs of p5.48xlarge .* 1 or 2 or 4 GPU\(s\),"),
    ("precision-the-gpu-lacks", dict(instance_type="g4dn.xlarge", model=model()),
     r"does not fit g4dn.xlarge: T4 has no bf16"),
    ("fp8-on-neuron", dict(instance_type="inf2.xlarge", model=model(precision="fp8")),
     r"model.precision \('fp8'\): the Neuron vLLM server is derived for bf16 or fp16"),
    ("checkpoint-larger-than-the-cache-volume", dict(instance_type="p5.48xlarge", storage=StorageOptions(
        root_volume_size_gib=100), model=model(source="meta-llama/Llama-3.1-70B-Instruct", architecture="llama-3.1-70b",
                                               hf_token_secret=TOKEN_ARN)),
     r"the checkpoint \(131.5 GiB\) does not fit the node's 100 GiB model cache volume"),
    ("no-dlc-for-a-cpu-type", dict(instance_type="c7i.2xlarge", model=model(precision="fp32")),
     r"no vLLM Deep Learning Container serves c7i.2xlarge"),
    ("ecs-without-a-model", dict(instance_type="inf2.xlarge"),
     r"model: engine='ecs' \(the default\) serves a model with vLLM"),
    ("a-port-the-ecs-agent-reserves", dict(instance_type="inf2.xlarge", port=51678, model=model()),
     r"port \(51678\) is reserved by the ECS container agent"),
    ("a-server-command-on-ecs", dict(instance_type="inf2.xlarge", model=model(), model_server_command="vllm serve x"),
     r"model_server_command runs on engine='nodes'"),
    ("a-model-on-nodes", dict(instance_type="inf2.xlarge", engine="nodes", model=model()),
     r"ModelOptions describes the server engine='ecs' runs"),
    ("queue-scaling-on-nodes", dict(instance_type="inf2.xlarge", engine="nodes", scaling=ScalingOptions(signal="queue")),
     r"scaling.signal \('queue'\) reads the vLLM server's metrics"),
    ("an-unknown-engine", dict(instance_type="inf2.xlarge", engine="kubernetes", model=model()),
     r"engine \('kubernetes'\) must be one of ecs, nodes"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD])
def test_bad_model_input_is_refused_before_anything_is_built(kwargs, message):
    assert_refused(InferenceFleet, message, construct_id="Fleet", **kwargs)


def test_from_workload_serves_the_advisors_pick_with_the_advisors_sizing():
    served = ModelOptions(source="Qwen/Qwen2.5-7B", max_concurrent_sequences=4)
    stack = cdk.Stack(cdk.App(context=cli_context()), "FromModel", env=cdk.Environment(region="us-east-1"))
    fleet = InferenceFleet.from_workload(stack, "Fleet", model=served)
    # The advisor asked directly, with the same workload written out by hand.
    advice = advise(Workload(task="inference", model="qwen2.5-7b", precision="bf16", sequences=4,
                             regions=("us-east-1",)))
    top = advice[0]
    assert fleet.recommendation.instance_type == top.instance_type == fleet.spec.instance_type
    template = cdk.assertions.Template.from_stack(stack).to_json()
    (definition,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    command = next(c for c in definition["Properties"]["ContainerDefinitions"] if c["Name"] == "Server")["Command"]
    spec = catalog.get(top.instance_type)
    devices = spec.accelerator.count if spec.accelerator.kind == "gpu" else spec.accelerator.neuron_cores
    assert command[command.index("--tensor-parallel-size") + 1] == str(devices)
    assert command[command.index("--max-model-len") + 1] == "4096"
    assert command[command.index("--max-num-seqs") + 1] == "4"
    assert command[command.index("--dtype") + 1] == "bfloat16"
    assert fleet.model_plan.memory_summary == advice.memory.summary()


def test_from_workload_with_a_workload_and_a_model_serves_the_model_on_the_pick():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Both", env=cdk.Environment(region="us-east-1"))
    workload = Workload(task="inference", model="tinyllama-1.1b", accelerator="inferentia")
    fleet = InferenceFleet.from_workload(stack, "Fleet", workload=workload, model=ModelOptions(source=TINY))
    assert fleet.spec.instance_type == advise(Workload(task="inference", model="tinyllama-1.1b",
                                                        accelerator="inferentia", regions=("us-east-1",)))[0].instance_type
    assert fleet.model_plan.settings.model == TINY


def test_from_workload_refuses_a_model_that_fits_nowhere():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Nowhere", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(Exception, match="workload"):
        InferenceFleet.from_workload(stack, "Fleet", model=ModelOptions(
            source="s3://acme/huge", params="1e15"))


# --------------------------------------------------------------------------------------------
# The default app, and what a model change does to the nodes
# --------------------------------------------------------------------------------------------


def build_inference(app):
    from mlcdk.stacks import add_stacks, settings_from_context

    return add_stacks(app, settings_from_context(app, environ={}))


def user_data_of(template: dict, asg: dict) -> str:
    template_id = asg["Properties"].get("LaunchTemplate", asg["Properties"].get("MixedInstancesPolicy", {}).get(
        "LaunchTemplate", {}).get("LaunchTemplateSpecification"))["LaunchTemplateId"]["Ref"]
    data = template["Resources"][template_id]["Properties"]["LaunchTemplateData"]
    return json.dumps(data["UserData"])


@pytest.mark.parametrize("engine", [None, "nodes"])
def test_the_default_app_never_synthesizes_an_elb_health_checked_group_without_a_server(engine):
    result = synth(build_inference, cli_context(stacks="InferenceStack", region="us-east-1", inference_engine=engine),
                   nag=False)
    template = result.templates["InferenceStack"]
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    assert groups
    for group in groups:
        if group["Properties"].get("HealthCheckType") == "ELB":
            assert "mlcdk-model-server.service" in user_data_of(template, group)
    services = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    if engine is None:  # the default serves TinyLlama with vLLM on ECS, registered with the target group
        (service,) = services
        assert service["LoadBalancers"][0]["ContainerName"] == "Server"
        assert [g["Properties"]["HealthCheckType"] for g in groups] == ["EC2"]
        assert result.templates["InferenceStack"]["Outputs"]["ServedModel"]["Value"] == TINY
    else:
        assert services == [] and [g["Properties"]["HealthCheckType"] for g in groups] == ["EC2"]


def test_changing_the_model_or_image_changes_the_task_definition_not_the_nodes():
    def deploy(served: ModelOptions) -> dict:
        def build(app):
            stack = cdk.Stack(app, "Serving", env=cdk.Environment(region="us-east-1"))
            InferenceFleet(stack, "Fleet", instance_type="g6e.12xlarge", model=served)
            return [stack]
        return synth(build, cli_context(), nag=False).templates["Serving"]
    before = deploy(ModelOptions(source=TINY))
    after = deploy(ModelOptions(source="Qwen/Qwen2.5-7B", image="public.ecr.aws/acme/vllm:2.0"))

    def of(template, kind):
        (resource,) = [r for r in template["Resources"].values() if r["Type"] == kind]
        return resource
    for kind in ("AWS::EC2::LaunchTemplate", "AWS::AutoScaling::AutoScalingGroup", "AWS::ECS::CapacityProvider"):
        assert of(before, kind) == of(after, kind), kind
    assert of(before, "AWS::ECS::TaskDefinition") != of(after, "AWS::ECS::TaskDefinition")


def test_nodes_without_a_server_command_warn_and_keep_ec2_health_checks_and_with_one_use_the_load_balancers():
    """#22 point 2: engine="nodes" without model_server_command must not churn: EC2 health checks (ELB checks would
    replace every node at the end of each grace period) and the mlcdk:noModelServer warning; with a command, the
    load balancer's checks after the grace, and no warning."""
    from aws_cdk.assertions import Annotations, Match

    app = cdk.App(context=cli_context())
    env = cdk.Environment(region="us-east-1")
    bare, served = cdk.Stack(app, "Bare", env=env), cdk.Stack(app, "Served", env=env)
    InferenceFleet(bare, "Fleet", instance_type="g6.xlarge", engine="nodes")
    InferenceFleet(served, "Fleet", instance_type="g6.xlarge", engine="nodes", model_server_command="serve")

    def group(stack):
        (resource,) = [r for r in app.synth().get_stack_by_name(stack.stack_name).template["Resources"].values()
                       if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        return resource["Properties"]

    def no_server_warnings(stack):
        return [w.entry.data for w in Annotations.from_stack(stack).find_warning(
            "/" + stack.stack_name + "/Fleet", Match.string_like_regexp(".*without model_server_command.*"))]

    assert group(bare)["HealthCheckType"] == "EC2"
    (warning,) = no_server_warnings(bare)
    assert warning.startswith("engine='nodes' without model_server_command: nothing on the nodes answers the load "
                              "balancer's health check") and "[ack: mlcdk:noModelServer]" in warning
    assert (group(served)["HealthCheckType"], no_server_warnings(served)) == ("ELB", [])


def test_a_token_given_for_its_secret_is_refused_without_being_echoed():
    """#22 point 1 (no token in a template) and #25 (bounded values): the error shows 6 characters, not the token."""
    token = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    with pytest.raises(ConfigurationError) as refused:
        InferenceFleet(cdk.Stack(cdk.App(context=cli_context()), "S", env=cdk.Environment(region="us-east-1")), "Fleet",
                       instance_type="g6e.12xlarge", model=model(hf_token_secret=token))
    assert str(refused.value).startswith(
        "model.hf_token_secret ('hf_AbC'... (39 characters)) must be a Secrets Manager secret or its complete ARN")
    assert token[6:] not in str(refused.value)
