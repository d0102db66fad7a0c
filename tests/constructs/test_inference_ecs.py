"""InferenceFleet engine="ecs": vLLM on Amazon ECS, per accelerator, with literal values worked by hand.

Grace periods: 2 x (download + load + Neuron compile), rounded up to a minute, with the checkpoint at 2 bytes per
parameter (bf16), the download at the slower of network card 0's baseline (DescribeInstanceTypes) and the cache
volume (gp3's 125 MiB/s baseline on the root volume, or the data volume's throughput), the load at the volume's
throughput (on Neuron at most 0.625 GB/s, 750 GB in 20 minutes), and the compile at 60 s per GB (15 GB in 15
minutes), from data/model_server.json's sources:

- inf2.xlarge, TinyLlama (1.1e9 x 2 = 2.2e9 B; 2.083 Gbit/s, 125 MiB/s): 16.78 + 16.78 + 132 = 165.57 s -> 331.1 s -> 360 s
- inf2.48xlarge, Llama 3.1 70B from S3 on a 1,000 MiB/s data volume (141.2e9 B; 100 Gbit/s):
  134.66 + 225.92 + 8,472 = 8,832.6 s -> 17,665.2 s -> 17,700 s
- trn1.32xlarge, Llama 3.1 8B (16.06e9 B): 122.53 + 122.53 + 963.6 = 1,208.7 s -> 2,417.3 s -> 2,460 s
- g6e.12xlarge, Qwen2.5 7B (15.22e9 B): 116.12 + 116.12 = 232.2 s -> 464.5 s -> 480 s
- p5.48xlarge, Llama 3.1 70B (141.2e9 B): 1,077.27 + 1,077.27 = 2,154.5 s -> 4,309.1 s -> 4,320 s

Container memory: 90% of the type's memory (less 512 MiB for the S3 copy container); shared memory half of it.
"""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_secretsmanager as secretsmanager

from mlcdk import InferenceFleet, ModelOptions, ScalingOptions, StorageOptions
from tests.harness import cli_context, lint, nag_problems, synth

TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbC123"
NEURON_016 = "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04"
VLLM_GPU = "public.ecr.aws/deep-learning-containers/vllm:0.27.1-gpu-py312-cu130-ubuntu22.04-ec2"

#: stack -> (region, InferenceFleet keyword arguments)
FLEETS = {
    "Inf2": ("us-east-1", dict(instance_type="inf2.xlarge",
                               model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"))),
    "Inf2Big": ("us-east-1", dict(
        instance_type="inf2.48xlarge", max_capacity=3,
        model=ModelOptions(source="s3://acme-models/llama-3.1-70b-instruct", architecture="llama-3.1-70b"),
        storage=StorageOptions(data_volume_size_gib=500, data_volume_throughput_mibs=1000, data_volume_iops=4000))),
    "Trn1": ("us-east-1", dict(instance_type="trn1.32xlarge",
                               model=ModelOptions(source="meta-llama/Llama-3.1-8B-Instruct", architecture="llama-3.1-8b",
                                                  hf_token_secret=TOKEN_ARN))),
    "G6e": ("us-east-1", dict(instance_type="g6e.12xlarge", scaling=ScalingOptions(signal="queue"),
                              model=ModelOptions(source="Qwen/Qwen2.5-7B"))),
    "P5": ("us-east-1", dict(instance_type="p5.48xlarge", scaling=ScalingOptions(signal="accelerator"),
                             model=ModelOptions(source="meta-llama/Llama-3.1-70B-Instruct", architecture="llama-3.1-70b"))),
}

#: stack -> (tensor parallel size, Neuron devices, GPUs, container memory MiB, shared memory MiB, image, grace s)
EXPECTED = {
    "Inf2": (2, 1, None, 14745, 7372, NEURON_016, 360),
    "Inf2Big": (24, 12, None, 707276, 353638, NEURON_016, 17700),
    "Trn1": (32, 16, None, 471859, 235929, NEURON_016, 2460),
    "G6e": (4, 0, 4, 353894, 176947, VLLM_GPU, 480),
    "P5": (8, 0, 8, 1887436, 943718, VLLM_GPU, 4320),
}


@pytest.fixture(scope="module")
def result():
    def build(app):
        stacks = []
        for name, (region, kwargs) in FLEETS.items():
            stack = cdk.Stack(app, name, env=cdk.Environment(region=region))
            if name == "P5":  # a secret object, not an ARN
                kwargs = dict(kwargs, model=ModelOptions(
                    source=kwargs["model"].source, architecture="llama-3.1-70b",
                    hf_token_secret=secretsmanager.Secret.from_secret_name_v2(stack, "HfToken", "team/hf-token")))
            InferenceFleet(stack, "Fleet", **kwargs)
            stacks.append(stack)
        return stacks
    return synth(build, cli_context())


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict, kind: str) -> dict:
    (resource,) = resources(template, kind).values()
    return resource


def server(template: dict) -> dict:
    definitions = one(template, "AWS::ECS::TaskDefinition")["Properties"]["ContainerDefinitions"]
    return next(c for c in definitions if c["Name"] == "Server")


def argument(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize("name", list(FLEETS))
def test_task_definition_per_accelerator(result, name):
    tp, neuron, gpus, memory, shm, image, _ = EXPECTED[name]
    container = server(result.templates[name])
    assert container["Image"] == image
    assert container["EntryPoint"] == ["vllm", "serve"]
    assert argument(container["Command"], "--tensor-parallel-size") == str(tp)
    assert container["Memory"] == memory
    assert container["LinuxParameters"]["SharedMemorySize"] == shm
    devices = [d["HostPath"] for d in container["LinuxParameters"].get("Devices", [])]
    assert devices == [f"/dev/neuron{i}" for i in range(neuron)]
    requirements = container.get("ResourceRequirements", [])
    assert requirements == ([{"Type": "GPU", "Value": str(gpus)}] if gpus else [])
    assert container["PortMappings"] == [{"ContainerPort": 8080, "HostPort": 8080, "Protocol": "tcp"}]
    assert one(result.templates[name], "AWS::ECS::TaskDefinition")["Properties"]["NetworkMode"] == "bridge"


def test_server_arguments_from_the_catalog_and_the_model(result):
    assert server(result.templates["Inf2"])["Command"] == [
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "--served-model-name", "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "--host", "0.0.0.0", "--port", "8080", "--tensor-parallel-size", "2", "--dtype", "bfloat16",
        "--max-model-len", "2048", "--max-num-seqs", "4", "--block-size", "32", "--num-gpu-blocks-override", "4"]
    assert server(result.templates["G6e"])["Command"] == [
        "Qwen/Qwen2.5-7B", "--served-model-name", "Qwen/Qwen2.5-7B", "--host", "0.0.0.0", "--port", "8080",
        "--tensor-parallel-size", "4", "--dtype", "bfloat16", "--max-model-len", "4096"]
    big = server(result.templates["Inf2Big"])["Command"]
    assert big[:3] == ["/models/s3/acme-models/llama-3.1-70b-instruct", "--served-model-name", "llama-3.1-70b-instruct"]
    assert argument(big, "--max-model-len") == "4096" and argument(big, "--max-num-seqs") == "4"


@pytest.mark.parametrize("name", list(FLEETS))
def test_health_from_the_readiness_endpoint_with_a_grace_from_the_model(result, name):
    grace = EXPECTED[name][-1]
    template = result.templates[name]
    check = server(template)["HealthCheck"]
    assert "http://127.0.0.1:8080/health" in check["Command"][1]
    assert (check["Interval"], check["Timeout"], check["Retries"], check["StartPeriod"]) == (30, 5, 3, min(grace, 300))
    service = one(template, "AWS::ECS::Service")["Properties"]
    assert service["HealthCheckGracePeriodSeconds"] == grace
    group = one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    assert (group["HealthCheckPath"], group["Port"], group["TargetType"]) == ("/health", 8080, "instance")
    asg = one(template, "AWS::AutoScaling::AutoScalingGroup")
    assert asg["Properties"]["HealthCheckType"] == "EC2"
    assert "TargetGroupARNs" not in asg["Properties"]  # the service registers its tasks, not the group its nodes


def test_scaling_on_requests_by_default_queue_depth_or_accelerator(result):
    def policy(name):
        return one(result.templates[name], "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"][
            "TargetTrackingScalingPolicyConfiguration"]
    requests = policy("Inf2")
    assert requests["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert requests["TargetValue"] == 60
    queue = policy("G6e")["CustomizedMetricSpecification"]
    assert (queue["Namespace"], queue["MetricName"], queue["Statistic"]) == (
        "CWAgent", "vllm:num_requests_waiting", "Average")
    assert [d["Name"] for d in queue["Dimensions"]] == ["ClusterName"]
    assert policy("G6e")["TargetValue"] == 4
    accelerator = policy("P5")["CustomizedMetricSpecification"]
    assert accelerator["MetricName"] == "nvidia_smi_utilization_gpu" and policy("P5")["TargetValue"] == 70
    target = one(result.templates["Inf2"], "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableDimension"]) == (1, 2, "ecs:service:DesiredCount")
    # The scaling policy owns the count: a deploy never resets it.
    assert "DesiredCount" not in one(result.templates["Inf2"], "AWS::ECS::Service")["Properties"]


def test_the_cloudwatch_agent_scrapes_the_servers_queue_into_the_scaling_metric(result):
    user_data = launch_user_data(result.templates["G6e"])
    assert "- targets: ['127.0.0.1:8080']" in user_data and "metrics_path: /metrics" in user_data
    assert '"^vllm:num_requests_waiting$"' in user_data and '"ClusterName"' in user_data


@pytest.mark.parametrize("name", list(FLEETS))
def test_capacity_provider_on_the_group_with_managed_scaling_and_termination_protection(result, name):
    template = result.templates[name]
    provider = one(template, "AWS::ECS::CapacityProvider")["Properties"]["AutoScalingGroupProvider"]
    (asg_id,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    assert provider["AutoScalingGroupArn"] == {"Ref": asg_id}
    assert provider["ManagedScaling"] == {"Status": "ENABLED", "TargetCapacity": 100}
    assert (provider["ManagedTerminationProtection"], provider["ManagedDraining"]) == ("ENABLED", "ENABLED")
    asg = template["Resources"][asg_id]
    assert asg["Properties"]["NewInstancesProtectedFromScaleIn"] is True
    assert "AutoScalingRollingUpdate" not in asg.get("UpdatePolicy", {})
    associations = one(template, "AWS::ECS::ClusterCapacityProviderAssociations")["Properties"]
    (cluster_id,) = resources(template, "AWS::ECS::Cluster")
    assert associations["Cluster"] == {"Ref": cluster_id}
    service = one(template, "AWS::ECS::Service")
    assert service["Properties"]["Cluster"] == {"Ref": cluster_id}
    assert service["Properties"]["CapacityProviderStrategy"][0]["CapacityProvider"] == provider_ref(template)
    assert list(resources(template, "AWS::ECS::ClusterCapacityProviderAssociations"))[0] in service["DependsOn"]


def provider_ref(template: dict) -> dict:
    (provider_id,) = resources(template, "AWS::ECS::CapacityProvider")
    return {"Ref": provider_id}


def test_rolling_deployments_with_a_circuit_breaker_and_rollback_and_one_spare_node(result):
    template = result.templates["Inf2Big"]
    deployment = one(template, "AWS::ECS::Service")["Properties"]["DeploymentConfiguration"]
    assert deployment == {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}, "MaximumPercent": 200,
                          "MinimumHealthyPercent": 100}
    assert one(template, "AWS::ECS::Service")["Properties"]["PlacementConstraints"] == [{"Type": "distinctInstance"}]
    asg = one(template, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert (asg["MinSize"], asg["MaxSize"]) == ("1", "4")  # max_capacity 3, plus one for a deployment's new task


def launch_user_data(template: dict) -> str:
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    parts = data["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


@pytest.mark.parametrize("name", list(FLEETS))
def test_task_containers_cannot_reach_the_instance_role(result, name):
    template = result.templates[name]
    metadata = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert (metadata["HttpTokens"], metadata["HttpPutResponseHopLimit"]) == ("required", 1)
    user_data = launch_user_data(template)
    assert "iptables -I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP" in user_data
    assert "ExecStartPost=" in user_data and "ECS_CLUSTER=" in user_data
    (task_role,) = [k for k, r in resources(template, "AWS::IAM::Role").items() if "TaskRole" in k]
    definition = one(template, "AWS::ECS::TaskDefinition")["Properties"]
    assert definition["TaskRoleArn"] == {"Fn::GetAtt": [task_role, "Arn"]}


def test_the_model_port_is_open_to_the_load_balancer_only(result):
    for name in FLEETS:
        template = result.templates[name]
        (ingress,) = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()]
        assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (8080, 8080, "tcp")
        assert "LoadBalancerSecurityGroup" in ingress["SourceSecurityGroupId"]["Fn::GetAtt"][0]


def policies_of(template: dict, role_id: str) -> list[dict]:
    return [r["Properties"]["PolicyDocument"] for r in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in r["Properties"]["Roles"]]


def test_the_task_role_reads_the_model_source_only(result):
    big = result.templates["Inf2Big"]
    (role,) = [k for k in resources(big, "AWS::IAM::Role") if "TaskRole" in k]
    (document,) = policies_of(big, role)
    statements = {tuple(sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"])): s
                  for s in document["Statement"]}
    assert statements[("s3:GetObject",)]["Resource"] == "arn:aws:s3:::acme-models/llama-3.1-70b-instruct/*"
    assert statements[("s3:ListBucket",)]["Condition"] == {"StringLike": {"s3:prefix": [
        "llama-3.1-70b-instruct/*", "llama-3.1-70b-instruct"]}}
    assert statements[("kms:Decrypt",)]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    assert set(statements) == {("s3:GetObject",), ("s3:ListBucket",), ("kms:Decrypt",)}
    # A Hugging Face model needs no AWS access at all.
    inf2 = result.templates["Inf2"]
    (role,) = [k for k in resources(inf2, "AWS::IAM::Role") if "TaskRole" in k]
    assert policies_of(inf2, role) == []


def test_an_s3_model_is_copied_by_the_task_role_before_the_server_starts(result):
    definitions = one(result.templates["Inf2Big"], "AWS::ECS::TaskDefinition")["Properties"]["ContainerDefinitions"]
    copy = next(c for c in definitions if c["Name"] == "ModelDownload")
    assert copy["Image"] == "public.ecr.aws/aws-cli/aws-cli:2.32.2" and copy["Essential"] is False
    assert copy["Command"] == ["s3", "sync", "s3://acme-models/llama-3.1-70b-instruct",
                               "/models/s3/acme-models/llama-3.1-70b-instruct", "--only-show-errors"]
    assert copy["StartTimeout"] == 17700
    assert server(result.templates["Inf2Big"])["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "ModelDownload"}]
    volumes = one(result.templates["Inf2Big"], "AWS::ECS::TaskDefinition")["Properties"]["Volumes"]
    assert volumes == [{"Host": {"SourcePath": "/data/mlcdk-models"}, "Name": "model-cache"}]


def test_a_gated_models_token_comes_from_secrets_manager_and_never_appears_in_the_template(result):
    container = server(result.templates["Trn1"])
    assert container["Secrets"] == [{"Name": "HF_TOKEN", "ValueFrom": TOKEN_ARN}]
    assert "HF_TOKEN" not in {e["Name"] for e in container["Environment"]}
    assert "HF_TOKEN" not in launch_user_data(result.templates["Trn1"])
    p5 = server(result.templates["P5"])["Secrets"]
    assert p5[0]["Name"] == "HF_TOKEN" and ":secret:team/hf-token" in json.dumps(p5[0]["ValueFrom"])
    # The execution role (ECS, at container start) may read that one secret; the task role may not.
    template = result.templates["Trn1"]
    (execution,) = [k for k in resources(template, "AWS::IAM::Role") if "ExecutionRole" in k]
    actions = {a for d in policies_of(template, execution) for s in d["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if s.get("Resource") == TOKEN_ARN}
    assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


def test_logs_go_to_a_kms_encrypted_log_group(result):
    template = result.templates["Inf2"]
    options = server(template)["LogConfiguration"]
    assert options["LogDriver"] == "awslogs"
    group = template["Resources"][options["Options"]["awslogs-group"]["Ref"]]["Properties"]
    assert "KmsKeyId" in group and group["RetentionInDays"] == 30


def test_ecs_optimized_amis_as_on_the_batch_engine(result):
    parameters = {name: [p["Default"] for p in result.templates[name]["Parameters"].values() if "Default" in p]
                  for name in ("Inf2", "P5")}
    assert "/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id" in parameters["Inf2"]
    assert "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id" in parameters["P5"]


def test_ecs_fleets_pass_cdk_nag_and_cfn_lint(result):
    assert nag_problems(result) == []
    for name, (region, _) in FLEETS.items():
        assert lint(result.template_paths[name], [region]) == [], name
