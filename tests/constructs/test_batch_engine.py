"""TrainingCluster(engine="batch"): the compute environment, queue and job definition, per family, and its bad input.

Expected values are written out from the catalog's published facts (EC2 instance type pages), not computed
by the code under test.
"""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from mlcdk import ConfigurationError, GuardrailOptions, JobOptions, PurchaseOptions, ScaleSchedule, TrainingCluster
from mlcdk.presets import catalog
from tests.harness import assert_refused, cli_context, lint, nag_problems, synth

REGION = "us-east-1"

#: type, nodes, EFA interfaces, Neuron devices, GPUs, vCPUs, container memory MiB (90% of nominal), nproc
CLUSTERS = [
    ("trn1.32xlarge", 2, 8, 16, 0, 128, 471_859, 32),
    ("trn1n.32xlarge", 2, 16, 16, 0, 128, 471_859, 32),
    ("p5.48xlarge", 2, 32, 0, 8, 192, 1_887_436, 8),
    ("p4d.24xlarge", 4, 4, 0, 8, 96, 1_061_683, 8),
    ("g5.12xlarge", 1, 0, 0, 4, 48, 176_947, 4),
]


def stack_id(instance_type: str) -> str:
    return "B" + instance_type.replace(".", "").replace("-", "")


@pytest.fixture(scope="module")
def built():
    clusters = {}

    def build(app):
        stacks = []
        for instance_type, nodes, *_ in CLUSTERS:
            stack = cdk.Stack(app, stack_id(instance_type), env=cdk.Environment(region=REGION))
            clusters[instance_type] = TrainingCluster(stack, "Cluster", instance_type=instance_type, nodes=nodes)
            agnostic = cdk.Stack(app, "A" + stack_id(instance_type))  # env-agnostic: linted in every offered region
            TrainingCluster(agnostic, "Cluster", instance_type=instance_type, nodes=nodes)
            stacks += [stack, agnostic]
        spot = cdk.Stack(app, "BSpot", env=cdk.Environment(region=REGION))
        clusters["spot"] = TrainingCluster(spot, "Cluster", preset="finetune-nvidia-a10g")
        stacks.append(spot)
        return stacks

    return synth(build, cli_context()), clusters


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r.get("Properties", {}) for k, r in template["Resources"].items() if r["Type"] == kind}


def only(template: dict, kind: str) -> tuple[str, dict]:
    (item,) = resources(template, kind).items()
    return item


def template_of(built, name: str) -> dict:
    return built[0].templates[stack_id(name) if name != "spot" else "BSpot"]


def container_of(job_definition: dict) -> dict:
    if job_definition["Type"] == "multinode":
        (node_range,) = job_definition["NodeProperties"]["NodeRangeProperties"]
        return node_range["Container"]
    return job_definition["ContainerProperties"]


def logical_id(construct) -> str:
    return cdk.Stack.of(construct).get_logical_id(construct.node.default_child)


# --------------------------------------------------------------------------------------------
# Compute environment
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("instance_type", "nodes", "efa", "neuron", "gpus", "vcpus", "memory", "nproc"), CLUSTERS)
def test_compute_environment_uses_the_versioned_template_without_group_ids(built, instance_type, nodes, efa, neuron,
                                                                           gpus, vcpus, memory, nproc):
    template, cluster = template_of(built, instance_type), built[1][instance_type]
    _, environment = only(template, "AWS::Batch::ComputeEnvironment")
    compute = environment["ComputeResources"]
    template_id = logical_id(cluster.launch_template)
    assert compute["LaunchTemplate"] == {"LaunchTemplateId": {"Ref": template_id},
                                         "Version": {"Fn::GetAtt": [template_id, "LatestVersionNumber"]}}
    assert environment["ReplaceComputeEnvironment"] is True
    assert (compute["MinvCpus"], compute["MaxvCpus"]) == (0, nodes * vcpus)
    assert compute["InstanceTypes"] == [instance_type] and compute["Type"] == "EC2"
    data = resources(template, "AWS::EC2::LaunchTemplate")[template_id]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert "IamInstanceProfile" not in data  # Batch uses the environment's instance role
    assert "UserData" in data and "Placement" not in data
    if efa:
        assert "SecurityGroupIds" not in compute  # aws-cdk #21577
        interfaces = data["NetworkInterfaces"]
        assert sum(n["InterfaceType"] in ("efa", "efa-only") for n in interfaces) == efa
        assert (interfaces[0]["NetworkCardIndex"], interfaces[0]["DeviceIndex"], interfaces[0]["InterfaceType"]) == (
            0, 0, "efa")  # the Batch layout: card 0 keeps a slot for the job's task interface
        group = cdk.Stack.of(cluster).get_logical_id(cluster.security_group.node.default_child)
        assert all(n["Groups"] == [{"Fn::GetAtt": [group, "GroupId"]}] for n in interfaces)
        placement = cdk.Stack.of(cluster).get_logical_id(cluster.placement_group)
        assert compute["PlacementGroup"] == {"Ref": placement}
        assert resources(template, "AWS::EC2::PlacementGroup")[placement]["Strategy"] == "cluster"
    else:
        assert "NetworkInterfaces" not in data and compute["SecurityGroupIds"]
        assert "PlacementGroup" not in compute and not resources(template, "AWS::EC2::PlacementGroup")


def test_ami_comes_from_the_ecs_optimized_parameter_of_the_accelerator(built):
    parameters = {name: [p["Default"] for p in template_of(built, name)["Parameters"].values()
                         if p["Type"].startswith("AWS::SSM::Parameter::Value") and p["Default"].startswith("/aws/")]
                  for name in ("trn1.32xlarge", "p5.48xlarge")}
    assert parameters["trn1.32xlarge"] == ["/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id"]
    assert parameters["p5.48xlarge"] == ["/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"]
    _, environment = only(template_of(built, "p5.48xlarge"), "AWS::Batch::ComputeEnvironment")
    assert environment["ComputeResources"]["Ec2Configuration"][0]["ImageType"] == "ECS_AL2023_NVIDIA"


def test_user_data_is_mime_multipart_and_sets_the_checkpoint_window(built):
    template = template_of(built, "trn1.32xlarge")
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    text = json.dumps(lt["LaunchTemplateData"]["UserData"])
    assert "Content-Type: multipart/mixed" in text
    assert "ECS_CONTAINER_STOP_TIMEOUT=600s" in text  # checkpoint_grace_period's default, 10 minutes
    assert "expected 8 EFA devices" in text


# --------------------------------------------------------------------------------------------
# Job queue, job definition, job role, logs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("instance_type", "nodes", "efa", "neuron", "gpus", "vcpus", "memory", "nproc"), CLUSTERS)
def test_job_definition_follows_the_catalog(built, instance_type, nodes, efa, neuron, gpus, vcpus, memory, nproc):
    template = template_of(built, instance_type)
    _, definition = only(template, "AWS::Batch::JobDefinition")
    if nodes > 1:
        assert definition["Type"] == "multinode"
        assert definition["NodeProperties"]["MainNode"] == 0 and definition["NodeProperties"]["NumNodes"] == nodes
        (node_range,) = definition["NodeProperties"]["NodeRangeProperties"]
        assert node_range["TargetNodes"] == "0:"
        assert node_range["Container"]["InstanceType"] == instance_type
    else:
        assert definition["Type"] == "container"
    container = container_of(definition)
    requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    expected = {"VCPU": str(vcpus), "MEMORY": str(memory), **({"GPU": str(gpus)} if gpus else {})}
    assert requirements == expected
    devices = [d["HostPath"] for d in container["LinuxParameters"].get("Devices", [])]
    assert devices == [f"/dev/infiniband/uverbs{i}" for i in range(efa)] + [f"/dev/neuron{i}" for i in range(neuron)]
    assert all(d["ContainerPath"] == d["HostPath"] for d in container["LinuxParameters"].get("Devices", []))
    ulimits = {u["Name"]: (u["SoftLimit"], u["HardLimit"]) for u in container["Ulimits"]}
    # The reference p5/p6 Batch job definitions' values (awsome-distributed-training 1.architectures/3.aws-batch/).
    assert ulimits == {"memlock": (-1, -1), "stack": (67_108_864, 67_108_864), "nofile": (1_024_000, 1_024_000)}
    assert container["LinuxParameters"]["SharedMemorySize"] == memory // 2
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["MLCDK_INSTANCE_TYPE"] == instance_type
    assert env["MLCDK_NPROC_PER_NODE"] == str(nproc)
    assert env["MLCDK_EFA"] == ("1" if efa else "0")
    assert env["MLCDK_EFA_DEVICE_RDMA"] == ("1" if efa else "0")  # every EFA type here supports RDMA read
    assert env["MLCDK_ACCELERATOR"] == ("neuron" if neuron else "gpu")
    # Batch takes a job definition of at most 24 KiB (Batch User Guide, "AWS Batch service quotas"); the launcher is
    # most of it. Tokens (a Ref or GetAtt here) become ARNs of at most ~200 characters each at deploy.
    assert len(env["MLCDK_LAUNCHER"]) < 12 * 1024
    assert len(json.dumps(definition, separators=(",", ":"))) < 20 * 1024


def test_retry_strategy_retries_host_failures_and_exits_on_application_errors(built):
    _, definition = only(template_of(built, "p5.48xlarge"), "AWS::Batch::JobDefinition")
    assert definition["RetryStrategy"] == {"Attempts": 3, "EvaluateOnExit": [
        {"Action": "RETRY", "OnStatusReason": "Host EC2*"}, {"Action": "EXIT", "OnExitCode": "*"}]}
    assert definition["Timeout"] == {"AttemptDurationSeconds": 72 * 3600}
    assert definition["PropagateTags"] is True


def test_default_images_are_the_deep_learning_containers(built):
    images = {name: container_of(only(template_of(built, name), "AWS::Batch::JobDefinition")[1])["Image"]
              for name in ("trn1.32xlarge", "p5.48xlarge")}
    # The DLC lists' newest releases (aws/deep-learning-containers docs/src/data/pytorch/2.13-cuda-ec2.yml; the
    # aws-neuron/deep-learning-containers README's pytorch-training-neuronx table, Neuron 2.30.0)
    assert images == {
        "trn1.32xlarge": "public.ecr.aws/neuron/pytorch-training-neuronx:2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04",
        "p5.48xlarge": "public.ecr.aws/deep-learning-containers/pytorch:2.13.0-cu133-amzn2023",
    }


def test_job_role_reaches_the_checkpoint_bucket_and_ecs_exec_and_nothing_else(built):
    template, cluster = template_of(built, "trn1.32xlarge"), built[1]["trn1.32xlarge"]
    stack = cdk.Stack.of(cluster)
    role_id = stack.get_logical_id(cluster.job_role.node.default_child)
    bucket = stack.get_logical_id(cluster.checkpoint_bucket.node.default_child)
    key = stack.get_logical_id(cluster.encryption_key.node.default_child)
    role = resources(template, "AWS::IAM::Role")[role_id]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "ManagedPolicyArns" not in role
    policies = [p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Roles"]]
    # `mlcdk shell` (JobOptions.shell, on by default): ECS Exec's four channel actions, which take no resource.
    (ecs_exec,) = [p for p in policies if "ssmmessages" in json.dumps(p)]
    assert ecs_exec["PolicyDocument"]["Statement"] == [{"Action": [
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel"], "Effect": "Allow", "Resource": "*"}]
    (policy,) = [p for p in policies if p is not ecs_exec]
    statements = [(sorted(s["Action"]), s["Resource"], s["Effect"]) for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        (["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], {"Fn::GetAtt": [bucket, "Arn"]},
         "Allow"),
        (["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
         {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}, "Allow"),
        (["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"], {"Fn::GetAtt": [key, "Arn"]}, "Allow"),
    ]
    _, definition = only(template, "AWS::Batch::JobDefinition")
    assert container_of(definition)["JobRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_logs_are_encrypted_with_the_cluster_key_and_expire(built):
    template, cluster = template_of(built, "p4d.24xlarge"), built[1]["p4d.24xlarge"]
    stack = cdk.Stack.of(cluster)
    group_id = stack.get_logical_id(cluster.log_group.node.default_child)
    group = resources(template, "AWS::Logs::LogGroup")[group_id]
    key = stack.get_logical_id(cluster.encryption_key.node.default_child)
    assert group["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]} and group["RetentionInDays"] == 30
    options = container_of(only(template, "AWS::Batch::JobDefinition")[1])["LogConfiguration"]
    assert options["LogDriver"] == "awslogs" and options["Options"]["awslogs-group"] == {"Ref": group_id}


def test_job_state_changes_reach_the_alarm_topic(built):
    template, cluster = template_of(built, "p5.48xlarge"), built[1]["p5.48xlarge"]
    stack = cdk.Stack.of(cluster)
    queue = stack.get_logical_id(cluster.job_queue.node.default_child)
    topic = stack.get_logical_id(cluster.alarm_topic.node.default_child)
    (rule,) = [r for r in resources(template, "AWS::Events::Rule").values() if r["EventPattern"]["source"] == ["aws.batch"]]
    assert rule["EventPattern"]["detail"] == {"status": ["FAILED", "SUCCEEDED"], "jobQueue": [{"Fn::GetAtt": [queue, "JobQueueArn"]}]}
    assert rule["Targets"][0]["Arn"] == {"Ref": topic}
    (job_queue,) = resources(template, "AWS::Batch::JobQueue").values()
    (environment_id,) = resources(template, "AWS::Batch::ComputeEnvironment")
    assert job_queue["ComputeEnvironmentOrder"] == [
        {"ComputeEnvironment": {"Fn::GetAtt": [environment_id, "ComputeEnvironmentArn"]}, "Order": 1}]


def test_single_node_spot_uses_a_spot_environment_and_a_container_job(built):
    template = template_of(built, "spot")
    _, environment = only(template, "AWS::Batch::ComputeEnvironment")
    assert environment["ComputeResources"]["Type"] == "SPOT"
    # The preset's fallbacks stay usable for one node: the container's request fits each of them.
    assert environment["ComputeResources"]["InstanceTypes"] == ["g5.12xlarge", "g5.24xlarge", "g5.48xlarge"]
    assert environment["ComputeResources"]["MaxvCpus"] == 192  # the largest type, g5.48xlarge
    assert only(template, "AWS::Batch::JobDefinition")[1]["Type"] == "container"


# --------------------------------------------------------------------------------------------
# Guardrails on the cluster dimension, and no Auto Scaling group
# --------------------------------------------------------------------------------------------


def test_guardrails_read_the_cluster_dimension(built):
    template, cluster = template_of(built, "trn1.32xlarge"), built[1]["trn1.32xlarge"]
    assert not resources(template, "AWS::AutoScaling::AutoScalingGroup")
    alarms = {k: a for k, a in resources(template, "AWS::CloudWatch::Alarm").items()}
    names = {stack_alarm for stack_alarm in cluster.guardrails.alarms}
    assert names == {"Idle", "AcceleratorMemoryHigh", "CpuIdle", "HardwareErrors", "BillingEstimatedCharges"}
    idle = alarms[cdk.Stack.of(cluster).get_logical_id(cluster.guardrails.alarms["Idle"].node.default_child)]
    by_id = {m["Id"]: m for m in idle["Metrics"]}
    assert by_id["inservice"]["Expression"] == "FILL(nodes, 0) / (PERIOD(nodes) / 60)"
    gauge = by_id["nodes"]["MetricStat"]["Metric"]
    assert gauge["MetricName"] == "mlcdk_nodes" and gauge["Namespace"] == "CWAgent"
    assert gauge["Dimensions"] == [{"Name": "MlcdkCluster", "Value": cluster.cluster_name}]
    busy = by_id["busy"]["MetricStat"]["Metric"]
    assert busy["MetricName"] == "neuroncore_utilization"
    assert busy["Dimensions"] == [{"Name": "MlcdkCluster", "Value": cluster.cluster_name}]


def test_nodes_publish_the_cluster_dimension(built):
    cluster = built[1]["p5.48xlarge"]
    (lt,) = resources(template_of(built, "p5.48xlarge"), "AWS::EC2::LaunchTemplate").values()
    text = json.dumps(lt["LaunchTemplateData"]["UserData"])
    assert f'mlcdk_nodes:1|g|#MlcdkCluster:{cluster.cluster_name}' in text
    assert f'"MlcdkCluster": "{cluster.cluster_name}"' in text.replace('\\"', '"')


# --------------------------------------------------------------------------------------------
# Gates: cfn-lint in every region that offers the type, and both nag packs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", [c[0] for c in CLUSTERS])
def test_cfn_lint_in_every_offered_region(built, instance_type):
    result = built[0]
    assert lint(result.template_paths[stack_id(instance_type)], [REGION]) == []
    assert lint(result.template_paths["A" + stack_id(instance_type)], catalog.get(instance_type).regions) == []


def test_nag_packs_pass(built):
    assert nag_problems(built[0]) == []


# --------------------------------------------------------------------------------------------
# Bad input: each a ConfigurationError naming the parameter, before any resource exists
# --------------------------------------------------------------------------------------------


BAD = [
    (dict(instance_type="p5.48xlarge", nodes=2, purchase=PurchaseOptions(option="spot")),
     r"purchase \('spot'\) with engine='batch': AWS Batch runs multi-node parallel jobs on on-demand"),
    (dict(instance_type="g5.12xlarge", nodes=1, purchase=PurchaseOptions(option="mixed")),
     r"purchase \('mixed'\) with engine='batch'"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(image="Not An Image")),
     r"job.image \('Not An Image'\) is not a valid image reference"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(image="")), r"job.image \(''\) must be a non-blank string"),
    (dict(instance_type="p5.48xlarge", nodes=513), r"nodes \(513\) must be a whole number from 1 to 512"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(timeout_hours=float("nan"))), r"job.timeout_hours \(nan\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(timeout_hours=0)), r"job.timeout_hours \(0\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(retry_attempts=11)), r"job.retry_attempts \(11\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(retry_attempts=True)), r"job.retry_attempts \(True\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(log_retention_days=31)), r"job.log_retention_days \(31\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(runnable_timeout_minutes=9)),
     r"job.runnable_timeout_minutes \(9\) must be a whole number from 10 to 1440 \(a job queue's "
     r"JobStateTimeLimitAction acts after 600 to 86,400 seconds \(maxTimeSeconds\)\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(runnable_timeout_minutes=1441)),
     r"job.runnable_timeout_minutes \(1441\) must be a whole number from 10 to 1440"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(runnable_timeout_minutes=True)),
     r"job.runnable_timeout_minutes \(True\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job=JobOptions(runnable_timeout_minutes="60")),
     r"job.runnable_timeout_minutes \('60'\)"),
    (dict(instance_type="p5.48xlarge", nodes=2, job={"image": "x"}), r"job \(\{'image': 'x'\}\) must be a JobOptions"),
    (dict(instance_type="p5.48xlarge", nodes=2, engine="slurm"), r"engine \('slurm'\) must be one of batch, nodes"),
    (dict(instance_type="p5.48xlarge", nodes=2, engine="nodes", job=JobOptions()),
     r"job: JobOptions configure the Batch job definition; engine='nodes' has none"),
    (dict(instance_type="p5.48xlarge", nodes=2, schedule=ScaleSchedule(stop="0 20 * * *", start="0 7 * * *")),
     r"schedule with engine='batch'"),
    (dict(instance_type="p5.48xlarge", nodes=2, guardrails=GuardrailOptions(scale_to_zero_when_idle=True)),
     r"guardrails.scale_to_zero_when_idle with engine='batch'"),
    (dict(instance_type="trn1.32xlarge", nodes=2, availability_zone_id="use1-az6",  # offers trn1 and trn1n
          purchase=PurchaseOptions(fallback_instance_types=("trn1n.32xlarge",))),
     r"purchase.fallback_instance_types \(trn1n.32xlarge\): engine='batch' runs a multi-node job on one instance type"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_refused_before_any_resource(kwargs, message):
    assert_refused(TrainingCluster, message, region=REGION, **kwargs)


def test_token_node_count_is_refused_with_the_reason():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Token", env=cdk.Environment(region=REGION))
    nodes = cdk.CfnParameter(stack, "Nodes", type="Number", default=2).value_as_number
    with pytest.raises(ConfigurationError, match=r"nodes: a deploy-time token cannot size a training cluster: .*the "
                                                 r"Batch job definition's size"):
        TrainingCluster(stack, "Cluster", instance_type="p5.48xlarge", nodes=nodes)


def test_preset_fallbacks_are_dropped_with_a_warning_on_multi_node_batch():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Warn", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "Cluster", preset="llm-pretrain-trainium", availability_zone_id="use1-az6")
    assert cluster.instance_types == ("trn1.32xlarge",)
    warnings = [m.data for m in cluster.node.metadata if m.type == "aws:cdk:warning"]
    assert any("the preset's fallback types (trn1n.32xlarge) are not used" in str(w) for w in warnings)


def test_engine_nodes_keeps_the_auto_scaling_group():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Nodes", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "Cluster", instance_type="p5.48xlarge", nodes=2, engine="nodes")
    assert cluster.auto_scaling_group is not None and cluster.job_queue is None
    assert isinstance(cluster.auto_scaling_group.node.default_child, cdk.CfnResource)
    assert not [c for c in stack.node.find_all() if isinstance(c, ec2.CfnLaunchTemplate) and "Batch" in c.node.path]


def test_a_hyphenated_family_gets_its_compute_environment():
    """aws-cdk's Batch L2 cannot parse p6-b200.48xlarge; the types reach CloudFormation as plain strings."""
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "P6", env=cdk.Environment(region=REGION))
    TrainingCluster(stack, "Cluster", instance_type="p6-b200.48xlarge", nodes=2)
    template = app.synth().get_stack_by_name("P6").template
    (_, environment) = only(template, "AWS::Batch::ComputeEnvironment")
    assert environment["ComputeResources"]["InstanceTypes"] == ["p6-b200.48xlarge"]


def _one_type_per_family() -> list[str]:
    chosen: dict[str, str] = {}
    for spec in catalog.default_catalog():
        chosen.setdefault(spec.family, spec.instance_type)
    return sorted(chosen.values())


@pytest.mark.parametrize("engine", ["batch", "nodes"])
def test_every_catalog_family_builds_or_is_refused_with_a_configuration_error(engine):
    """No catalog type crashes the construct (a jsii error or TypeError): it builds, or it is refused clearly."""
    refused = {}
    for instance_type in _one_type_per_family():
        app = cdk.App(context=cli_context())
        stack = cdk.Stack(app, "Family", env=cdk.Environment(region=catalog.get(instance_type).regions[0]))
        try:
            TrainingCluster(stack, "Cluster", instance_type=instance_type, nodes=1, engine=engine)
        except ConfigurationError as error:
            refused[instance_type] = str(error)
    # Refused: accelerators without NVIDIA drivers (Gaudi, AMD), types no catalog AMI runs (Qualcomm dl2q, FPGA f2,
    # Xilinx vt1, Inferentia 1 on current Neuron), and on Batch the arm64 GPU g5g (no arm64 ECS GPU AMI).
    # Inferentia (inf1, inf2) serves and does not train: refused by the catalog's training fact.
    # On Batch, also the types no default job image drives (mlcdk.presets.images): Volta p3/p3dn and Maxwell g3/g3s
    # (CUDA 13 and PyTorch's CUDA 12.8+ builds dropped them) and Graviton c7g/c7gn (every default image is x86_64).
    expected = ["dl1.24xlarge", "dl2q.24xlarge", "f2.12xlarge", "g4ad.16xlarge", "inf1.24xlarge", "inf2.24xlarge",
                "vt1.24xlarge"]
    if engine == "batch":
        expected = sorted([*expected, "g5g.16xlarge", "p3.16xlarge", "p3dn.24xlarge", "g3.16xlarge", "g3s.xlarge",
                           "c7g.12xlarge", "c7gn.12xlarge"])
    assert sorted(refused) == expected, refused
    assert all(message.startswith("instance_type: ") for message in refused.values())


def test_batch_metrics_take_the_usual_metric_options():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Metrics", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "Cluster", instance_type="p5.48xlarge", nodes=2)
    cpu = cluster.metric_cpu_utilization(period=cdk.Duration.minutes(1), statistic="Maximum", label="cpu")
    assert (cpu.metric_name, cpu.statistic, cpu.label, cpu.period.to_minutes()) == ("cpu_usage_active", "Maximum", "cpu", 1)
    nodes = cluster.metric_in_service_instances(period=cdk.Duration.minutes(5), label="running")
    assert (nodes.label, nodes.period.to_minutes()) == ("running", 5)
    assert nodes.using_metrics["nodes"].period.to_minutes() == 5
    with pytest.raises(ConfigurationError, match=r"metric options \(statistic\) must be among color, label, period"):
        cluster.metric_in_service_instances(statistic="Sum")
