"""TrainingCluster: what the template contains, for each family, and every construction-time error."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from mlcdk import ConfigurationError, PrivateNetwork, PurchaseOptions, ScaleSchedule, StorageOptions, TrainingCluster
from mlcdk.constructs.efa import INTERFACE_TYPES
from mlcdk.constructs.guardrails import GuardrailOptions
from mlcdk.presets import catalog
from tests.harness import cli_context, lint, nag_problems, synth, nothing_built

REGION = "us-east-1"

#: (instance type, nodes, expected EFA interfaces; 0 = plain single interface, no placement group)
CLUSTERS = [
    ("trn1.32xlarge", 2, 8),
    ("trn1n.32xlarge", 2, 16),
    ("p5.48xlarge", 2, 32),
    ("p4d.24xlarge", 2, 4),
    ("g5.12xlarge", 1, 0),
    ("trn1.2xlarge", 1, 0),
]


def stack_id(instance_type: str) -> str:
    return "C" + instance_type.replace(".", "").replace("-", "")


@pytest.fixture(scope="module")
def clusters():
    """One stack per cluster type, synthesized once with cdk-nag attached."""
    built = {}

    def build(app):
        stacks = []
        for instance_type, nodes, _ in CLUSTERS:
            stack = cdk.Stack(app, stack_id(instance_type), env=cdk.Environment(region=REGION))
            built[instance_type] = TrainingCluster(stack, "Cluster", instance_type=instance_type, nodes=nodes,
                                                   engine="nodes")
            stacks.append(stack)
        return stacks

    result = synth(build, cli_context())
    return result, built


def template_of(clusters, instance_type) -> dict:
    result, _ = clusters
    return result.templates[stack_id(instance_type)]


def resources(template: dict, kind: str) -> list[dict]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


def launch_template_data(template: dict) -> dict:
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate")
    return lt["LaunchTemplateData"]


# --------------------------------------------------------------------------------------------
# EFA and placement, per family
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("instance_type", "nodes", "efa"), CLUSTERS)
def test_efa_interface_count_follows_the_catalog(clusters, instance_type, nodes, efa):
    data = launch_template_data(template_of(clusters, instance_type))
    interfaces = data.get("NetworkInterfaces", [])
    assert sum(nic["InterfaceType"] in ("efa", "efa-only") for nic in interfaces) == efa
    if efa:
        assert efa == catalog.get(instance_type).maximum_efa_interfaces
        assert interfaces[0]["InterfaceType"] == "interface"
        assert (interfaces[0]["NetworkCardIndex"], interfaces[0]["DeviceIndex"]) == (0, 0)
    else:
        assert "NetworkInterfaces" not in data and data["SecurityGroupIds"]


@pytest.mark.parametrize(("instance_type", "nodes", "efa"), [c for c in CLUSTERS if c[2]])
def test_efa_layout_is_valid_where_cfn_lint_cannot_see(clusters, instance_type, nodes, efa):
    """Card indexes unique per device slot and in range, valid InterfaceType, groups on every interface,
    and no SecurityGroupIds beside the interfaces."""
    spec = catalog.get(instance_type)
    data = launch_template_data(template_of(clusters, instance_type))
    interfaces = data["NetworkInterfaces"]
    slots = [(nic["NetworkCardIndex"], nic["DeviceIndex"]) for nic in interfaces]
    assert len(slots) == len(set(slots))
    assert all(0 <= card < spec.maximum_network_cards for card, _ in slots)
    efa_cards = [nic["NetworkCardIndex"] for nic in interfaces if nic["InterfaceType"] == "efa-only"]
    assert len(efa_cards) == len(set(efa_cards)), "one EFA device per network card"
    assert all(nic["InterfaceType"] in INTERFACE_TYPES for nic in interfaces)
    assert all(nic["Groups"] for nic in interfaces)
    assert "SecurityGroupIds" not in data
    assert not any(nic.get("AssociatePublicIpAddress") for nic in interfaces)


@pytest.mark.parametrize(("instance_type", "nodes", "efa"), CLUSTERS)
def test_multi_node_clusters_get_a_cluster_placement_group_referenced_by_name(clusters, instance_type, nodes, efa):
    template = template_of(clusters, instance_type)
    groups = resources(template, "AWS::EC2::PlacementGroup")
    placement = launch_template_data(template).get("Placement", {})
    if nodes > 1:
        assert [g["Strategy"] for g in groups] == ["cluster"]
        assert list(placement["GroupName"]) == ["Ref"]
    else:
        assert groups == [] and placement == {}


@pytest.mark.parametrize(("instance_type", "nodes", "efa"), CLUSTERS)
def test_nodes_sit_in_one_subnet_pinned_to_an_offered_az_id(clusters, instance_type, nodes, efa):
    template = template_of(clusters, instance_type)
    (asg,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    assert len(asg["VPCZoneIdentifier"]) == 1
    subnet_id = asg["VPCZoneIdentifier"][0]["Ref"]
    subnet = template["Resources"][subnet_id]["Properties"]
    assert subnet["AvailabilityZoneId"] in catalog.get(instance_type).offered_azs(REGION)
    assert subnet.get("MapPublicIpOnLaunch") is False
    _, built = clusters
    assert built[instance_type].availability_zone_id == subnet["AvailabilityZoneId"]


@pytest.mark.parametrize(("instance_type", "nodes", "efa"), CLUSTERS)
def test_cluster_stacks_pass_cdk_nag_and_cfn_lint(clusters, instance_type, nodes, efa):
    result, _ = clusters
    assert nag_problems(result) == []
    assert lint(result.template_paths[stack_id(instance_type)], [REGION]) == []


# --------------------------------------------------------------------------------------------
# Security defaults
# --------------------------------------------------------------------------------------------


def test_imdsv2_required_with_hop_limit_2_and_every_volume_encrypted_with_the_cluster_key(clusters):
    template = template_of(clusters, "trn1.32xlarge")
    data = launch_template_data(template)
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                                       "InstanceMetadataTags": "enabled"}
    (key_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key" and k.startswith("ClusterKey")]
    for mapping in data["BlockDeviceMappings"]:
        ebs = mapping["Ebs"]
        assert ebs["Encrypted"] is True and ebs["VolumeType"] == "gp3"
        assert ebs["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True


def test_key_policy_lets_ebs_use_the_key_through_ec2_without_naming_the_service_linked_role(clusters):
    template = Template.from_json(template_of(clusters, "trn1.32xlarge"))
    template.has_resource_properties("AWS::KMS::Key", {"KeyPolicy": {"Statement": Match.array_with([
        Match.object_like({"Sid": "EbsGrantsThroughEc2", "Action": "kms:CreateGrant",
                           "Condition": Match.object_like({"Bool": {"kms:GrantIsForAWSResource": "true"}})}),
    ])}})


def test_security_group_allows_only_itself_no_ssh_and_nothing_from_the_internet(clusters):
    template = template_of(clusters, "p5.48xlarge")
    (group_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroup"]
    ingress = resources(template, "AWS::EC2::SecurityGroupIngress")
    assert len(ingress) == 1
    assert ingress[0]["IpProtocol"] == "-1"
    assert ingress[0]["SourceSecurityGroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    (egress,) = resources(template, "AWS::EC2::SecurityGroupEgress")
    assert egress["IpProtocol"] == "-1" and egress["DestinationSecurityGroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    group = template["Resources"][group_id]["Properties"]
    assert "SecurityGroupIngress" not in group
    for rule in ingress:
        assert rule.get("CidrIp") != "0.0.0.0/0" and rule.get("FromPort") != 22


def test_role_has_session_manager_only_scoped_metrics_and_no_wildcard_actions(clusters):
    template = template_of(clusters, "trn1.32xlarge")
    roles = [r for r in resources(template, "AWS::IAM::Role")
             if r["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service") == "ec2.amazonaws.com"]
    (role,) = roles
    assert "ManagedPolicyArns" not in role  # no AmazonSSMManagedInstanceCore: its ssm:GetParameter* on * is gone
    statements = [s for p in resources(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    node_actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert "cloudwatch:PutMetricData" in node_actions
    metrics_statement = next(s for s in statements if s["Action"] == "cloudwatch:PutMetricData")
    assert metrics_statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}
    assert not [a for a in node_actions if a.endswith("*") and a.startswith(("s3:", "kms:", "autoscaling:", "ec2:"))]


def test_checkpoint_bucket_is_kms_encrypted_versioned_private_ssl_only_and_expires_old_versions(clusters):
    template = Template.from_json(template_of(clusters, "trn1.32xlarge"))
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [Match.object_like({
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()}})]},
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}})])},
        "LoggingConfiguration": Match.object_like({"LogFilePrefix": "checkpoints/"}),
    })
    template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})


def test_the_checkpoint_access_log_bucket_is_versioned_and_encrypted_with_the_cluster_key(clusters):
    """S3 server access logs can land in an SSE-KMS bucket; CDK grants logging.s3.amazonaws.com the key."""
    template = template_of(clusters, "trn1.32xlarge")
    (logs,) = [r["Properties"] for k, r in template["Resources"].items()
               if r["Type"] == "AWS::S3::Bucket" and "CheckpointsAccessLogs" in k]
    (rule,) = logs["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and key_id.startswith("ClusterKey")
    assert logs["VersioningConfiguration"] == {"Status": "Enabled"}
    statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert [s for s in statements if s["Principal"] == {"Service": "logging.s3.amazonaws.com"}]


# --------------------------------------------------------------------------------------------
# Capacity, interruptions, schedule
# --------------------------------------------------------------------------------------------


def test_group_is_sized_to_nodes_can_stop_at_zero_and_publishes_group_metrics(clusters):
    template = Template.from_json(template_of(clusters, "trn1.32xlarge"))
    template.has_resource_properties("AWS::AutoScaling::AutoScalingGroup", {
        "MinSize": "0", "MaxSize": "2", "DesiredCapacity": "2",
        "MetricsCollection": [{"Granularity": "1Minute"}],
        "NotificationConfigurations": Match.array_with([Match.object_like({"TopicARN": Match.any_value()})]),
    })
    template.has_resource_properties("AWS::AutoScaling::LifecycleHook", {
        "LifecycleHookName": "mlcdk-checkpoint", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "HeartbeatTimeout": 600, "DefaultResult": "CONTINUE"})
    template.resource_count_is("AWS::Events::Rule", 0)  # on-demand: no spot events


def one_cluster(region: str | None = REGION, **kwargs) -> tuple[TrainingCluster, dict]:
    def build(app):
        stack = cdk.Stack(app, "One", env=cdk.Environment(region=region) if region else None)
        build.cluster = TrainingCluster(stack, "Cluster", **{"engine": "nodes", **kwargs})
        return [stack]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    return build.cluster, result.templates["One"]


def test_spot_preset_gets_a_price_capacity_optimized_mix_with_same_gpu_fallbacks_and_rebalancing():
    cluster, template = one_cluster(preset="finetune-nvidia-a10g")
    (asg,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    policy = asg["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    types = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
    assert types == ["g5.12xlarge", "g5.24xlarge", "g5.48xlarge"]
    assert all(catalog.get(t).accelerator.name == "A10G" for t in types)
    assert asg["CapacityRebalance"] is True
    (rule,) = resources(template, "AWS::Events::Rule")
    assert rule["EventPattern"]["detail-type"] == ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]
    assert rule["Targets"][0]["Arn"]["Ref"].startswith("ClusterAlarmTopic")


def test_on_demand_base_plus_spot_mix():
    _, template = one_cluster(instance_type="trn1.32xlarge", nodes=4, availability_zone_id="use1-az6", purchase=PurchaseOptions(
        option="mixed", on_demand_base_capacity=2, on_demand_percentage_above_base=0,
        fallback_instance_types=("trn1n.32xlarge",)))
    (asg,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    distribution = asg["MixedInstancesPolicy"]["InstancesDistribution"]
    assert (distribution["OnDemandBaseCapacity"], distribution["OnDemandPercentageAboveBaseCapacity"]) == (2, 0)
    assert [o["InstanceType"] for o in asg["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == ["trn1.32xlarge", "trn1n.32xlarge"]


def test_fallbacks_not_offered_in_the_clusters_az_are_dropped_or_refused():
    cluster, template = one_cluster(preset="llm-pretrain-trainium", availability_zone_id="use1-az4")
    assert cluster.instance_types == ("trn1.32xlarge",)  # trn1n.32xlarge is offered only in use1-az6
    assert "MixedInstancesPolicy" not in resources(template, "AWS::AutoScaling::AutoScalingGroup")[0]
    cluster, _ = one_cluster(preset="llm-pretrain-trainium", availability_zone_id="use1-az6")
    assert cluster.instance_types == ("trn1.32xlarge", "trn1n.32xlarge")
    stack = cdk.Stack(cdk.App(context=cli_context()), "X", env=cdk.Environment(region=REGION))
    with pytest.raises(ConfigurationError, match="trn1n.32xlarge cannot replace trn1.32xlarge: it is not offered in "
                                                 "the cluster's AZ use1-az4"):
        TrainingCluster(stack, "Cluster", engine="nodes", instance_type="trn1.32xlarge", availability_zone_id="use1-az4",
                        purchase=PurchaseOptions(fallback_instance_types=("trn1n.32xlarge",)))


def test_schedule_scales_to_zero_and_back():
    _, template = one_cluster(instance_type="g6e.12xlarge", schedule=ScaleSchedule(stop="0 20 * * 1-5", start="0 7 * * 1-5",
                                                                                   time_zone="Europe/Berlin"))
    actions = sorted((a["Recurrence"], a["DesiredCapacity"]) for a in resources(template, "AWS::AutoScaling::ScheduledAction"))
    assert actions == [("0 20 * * 1-5", 0), ("0 7 * * 1-5", 1)]
    assert {a["TimeZone"] for a in resources(template, "AWS::AutoScaling::ScheduledAction")} == {"Europe/Berlin"}


def test_data_volume_is_a_second_encrypted_gp3_volume_mounted_by_user_data():
    cluster, template = one_cluster(instance_type="trn1.2xlarge", storage=StorageOptions(
        data_volume_size_gib=2000, data_volume_iops=6000, data_volume_throughput_mibs=500, data_mount_point="/fsx"))
    data = launch_template_data(template)
    (volume,) = [m for m in data["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
    assert (volume["Ebs"]["VolumeSize"], volume["Ebs"]["Iops"], volume["Ebs"]["Throughput"]) == (2000, 6000, 500)
    assert volume["Ebs"]["Encrypted"] is True
    assert "mkfs.xfs" in str(data["UserData"]) and "/fsx" in str(data["UserData"])


def test_user_data_checks_efa_only_on_efa_clusters(clusters):
    assert "fi_info" in str(launch_template_data(template_of(clusters, "trn1.32xlarge"))["UserData"])
    assert "fi_info" not in str(launch_template_data(template_of(clusters, "g5.12xlarge"))["UserData"])


def test_neuron_dlami_for_trainium_and_nvidia_dlami_for_gpus_from_ssm(clusters):
    trn = template_of(clusters, "trn1.32xlarge")["Parameters"]
    gpu = template_of(clusters, "p5.48xlarge")["Parameters"]
    assert any(p.get("Default") == "/aws/service/neuron/dlami/multi-framework/ubuntu-22.04/latest/image_id" for p in trn.values())
    assert any("/aws/service/deeplearning/ami/x86_64/" in str(p.get("Default")) for p in gpu.values())


# --------------------------------------------------------------------------------------------
# Bring your own, connections, grants, metrics
# --------------------------------------------------------------------------------------------


def test_bring_your_own_network_role_and_pinned_az():
    def build(app):
        stack = cdk.Stack(app, "Byo", env=cdk.Environment(region="us-west-2"))
        network = PrivateNetwork(stack, "Net", availability_zone_ids=["usw2-az1", "usw2-az2", "usw2-az4"])
        role = iam.Role(stack, "MyRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
        build.cluster = TrainingCluster(stack, "Cluster", engine="nodes", instance_type="trn1.32xlarge", nodes=2, vpc=network.vpc,
                                        role=role, availability_zone_id="usw2-az4")
        return [stack]
    result = synth(build, cli_context())
    template = result.templates["Byo"]
    assert nag_problems(result) == []
    assert len([r for r in resources(template, "AWS::IAM::Role")
                if "ec2.amazonaws.com" in str(r["AssumeRolePolicyDocument"])]) == 1  # only MyRole
    (asg,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    assert template["Resources"][asg["VPCZoneIdentifier"][0]["Ref"]]["Properties"]["AvailabilityZoneId"] == "usw2-az4"
    assert build.cluster.availability_zone_id == "usw2-az4"


def test_connections_and_grants_work_like_any_cdk_construct():
    def build(app):
        stack = cdk.Stack(app, "Use", env=cdk.Environment(region=REGION))
        cluster = TrainingCluster(stack, "Cluster", engine="nodes", instance_type="trn1.2xlarge")
        fsx = ec2.SecurityGroup(stack, "Fsx", vpc=cluster.node.find_child("Network").vpc)
        fsx.connections.allow_from(cluster, ec2.Port.tcp(988), "Lustre")
        from aws_cdk import aws_s3 as s3
        data = s3.Bucket(stack, "Data", enforce_ssl=True)
        data.grant_read(cluster)
        return [stack]
    template = Template.from_json(synth(build, cli_context(), nag=False).templates["Use"])
    template.has_resource_properties("AWS::EC2::SecurityGroupIngress", {"FromPort": 988, "ToPort": 988, "IpProtocol": "tcp"})
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": Match.array_with(["s3:GetObject*"])})])}})


@pytest.mark.parametrize(("instance_type", "utilization", "memory"), [
    ("trn1.32xlarge", "neuroncore_utilization", "neuron_device_memory_utilization"),
    ("p5.48xlarge", "nvidia_smi_utilization_gpu", None),
])
def test_metric_methods_name_the_published_metrics_with_the_group_dimension(clusters, instance_type, utilization, memory):
    _, built = clusters
    cluster = built[instance_type]
    stack = cdk.Stack.of(cluster)
    metric = cluster.metric_accelerator_utilization()
    assert (metric.namespace, metric.metric_name) == ("CWAgent", utilization)
    assert stack.resolve(metric.dimensions["AutoScalingGroupName"]) == {"Ref": stack.get_logical_id(cluster.auto_scaling_group.node.default_child)}
    memory_metric = cluster.metric_accelerator_memory_utilization()
    if memory:
        assert memory_metric.metric_name == memory
    else:
        assert memory_metric.expression == "100 * used / total"
        assert {m.metric_name for m in memory_metric.using_metrics.values()} == {"nvidia_smi_memory_used", "nvidia_smi_memory_total"}
    assert cluster.metric_in_service_instances().metric_name == "GroupInServiceInstances"


@pytest.mark.parametrize("engine", ["nodes", "batch"])
def test_node_count_from_a_token_is_refused_because_it_decides_efa_placement_and_cost(engine):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Tok", env=cdk.Environment(region=REGION))
    nodes = cdk.CfnParameter(stack, "Nodes", type="Number", default=2)
    with pytest.raises(ConfigurationError, match=r"nodes: a deploy-time token cannot size a training cluster: the node "
                                                 r"count decides at synth time whether EFA and the cluster placement "
                                                 r"group are on, .* and the cost alarm and budget"):
        TrainingCluster(stack, "Cluster", engine=engine, instance_type="trn1.32xlarge", nodes=nodes.value_as_number)
    assert nothing_built(stack, "Cluster")


def test_placement_group_off_for_an_efa_cluster_warns():
    def build(app):
        stack = cdk.Stack(app, "Warn", env=cdk.Environment(region=REGION))
        TrainingCluster(stack, "Cluster", engine="nodes", instance_type="p5.48xlarge", nodes=4, placement_group=False)
        return [stack]
    result = synth(build, cli_context())
    warnings = [m for m in cdk.assertions.Annotations.from_stack(result.stacks["Warn"]).find_warning("*", Match.any_value())]
    assert any("placement_group is off for a 4-node EFA cluster of p5.48xlarge" in str(w.entry.data) for w in warnings)
    assert resources(result.templates["Warn"], "AWS::EC2::PlacementGroup") == []


# --------------------------------------------------------------------------------------------
# Validation: ConfigurationError at construction, value in the message
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, r"TrainingCluster needs instance_type or preset"),
    ({"instance_type": "trn1.32xlarg"}, r"unknown instance type 'trn1.32xlarg'; did you mean 'trn1.32xlarge'"),
    ({"preset": "llm-pretrain-trainum"}, r"unknown preset 'llm-pretrain-trainum'; did you mean 'llm-pretrain-trainium'"),
    ({"preset": "serving-nvidia"}, r"preset \('serving-nvidia'\) is an inference preset"),
    ({"instance_type": "trn1.32xlarge", "region": "eu-west-1"},
     r"instance_type: trn1.32xlarge is not offered in eu-west-1; it is offered in ap-south-1, .*us-west-2"),
    ({"instance_type": "trn1.32xlarge", "availability_zone_id": "use1-az1"},
     r"availability_zone_id: trn1.32xlarge is not offered in use1-az1; in us-east-1 it is offered in use1-az4, use1-az5, use1-az6"),
    ({"instance_type": "trn1.32xlarge", "nodes": 0}, r"nodes \(0\) must be a whole number from 1 to 512"),
    ({"instance_type": "trn1.32xlarge", "nodes": -2}, r"nodes \(-2\) must be a whole number"),
    ({"instance_type": "trn1.32xlarge", "nodes": 10_000}, r"nodes \(10000\) must be a whole number"),
    ({"instance_type": "g5.xlarge", "efa": True}, r"efa: g5.xlarge does not support EFA"),
    ({"instance_type": "vt1.3xlarge", "placement_group": True, "machine_image": "x"},
     r"placement_group: vt1.3xlarge does not support cluster placement groups"),
    ({"instance_type": "g5.xlarge", "purchase": PurchaseOptions(option="reserved")},
     r"purchase.option \('reserved'\) must be one of on-demand, spot, mixed"),
    ({"instance_type": "g5.xlarge", "purchase": PurchaseOptions(option="mixed", on_demand_percentage_above_base=150)},
     r"on_demand_percentage_above_base \(150\) must be a whole number from 0 to 100"),
    ({"instance_type": "g5.12xlarge", "purchase": PurchaseOptions(option="spot", fallback_instance_types=("c7g.xlarge",))},
     r"purchase.fallback_instance_types: c7g.xlarge cannot replace g5.12xlarge: it is arm64"),
    ({"instance_type": "trn1.32xlarge", "nodes": 2, "purchase": PurchaseOptions(fallback_instance_types=("trn1.2xlarge",))},
     r"trn1.2xlarge cannot replace trn1.32xlarge: it has 32 GiB of accelerator memory"),
    ({"instance_type": "g5.12xlarge", "purchase": PurchaseOptions(fallback_instance_types=("g6.12xlarge",))},
     r"g6.12xlarge cannot replace g5.12xlarge: its accelerator is L4, not A10G"),
    ({"instance_type": "g5.xlarge", "storage": StorageOptions(root_volume_size_gib=4)},
     r"storage.root_volume_size_gib \(4\) must be a whole number from 8 to 16384"),
    ({"instance_type": "g5.xlarge", "storage": StorageOptions(data_volume_size_gib=70000)},
     r"storage.data_volume_size_gib \(70000\) must be a whole number from 1 to 16384"),
    ({"instance_type": "g5.xlarge", "storage": StorageOptions(data_volume_size_gib=100, data_volume_iops=20000)},
     r"storage.data_volume_iops \(20000\) must be a whole number from 3000 to 16000"),
    ({"instance_type": "g5.xlarge", "storage": StorageOptions(data_volume_size_gib=100, data_mount_point="data")},
     r"storage.data_mount_point \('data'\) must be an absolute path"),
    ({"instance_type": "inf1.xlarge"}, r"instance_type: inf1.xlarge cannot train: Inferentia is inference-only"),
    ({"instance_type": "inf2.48xlarge", "nodes": 2},
     r"instance_type: inf2.48xlarge cannot train: Inferentia2 is inference-only \(source: https://"),
    ({"instance_type": "g5.xlarge", "alarm_emails": ["ops"]}, r"alarm_emails \('ops'\) is not an e-mail address"),
])
def test_bad_configuration_fails_at_construction_with_the_value_in_the_message(kwargs, message):
    kwargs = dict(kwargs)
    region = kwargs.pop("region", REGION)
    if kwargs.get("machine_image") == "x":
        kwargs["machine_image"] = ec2.MachineImage.latest_amazon_linux2023()
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Bad", env=cdk.Environment(region=region))
    with pytest.raises(ConfigurationError, match=message):
        TrainingCluster(stack, "Cluster", **kwargs)
    assert nothing_built(stack, "Cluster")


def test_vpc_without_an_az_offering_the_type_is_rejected():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "NoAz", env=cdk.Environment(region=REGION))
    network = PrivateNetwork(stack, "Net", availability_zone_ids=["use1-az1", "use1-az2"])
    with pytest.raises(ConfigurationError, match=r"vpc: none of its AZs \(use1-az1, use1-az2\) offers trn1.32xlarge"):
        TrainingCluster(stack, "Cluster", instance_type="trn1.32xlarge", vpc=network.vpc)


def test_env_agnostic_cluster_synthesizes_and_lints_in_every_offering_region():
    cluster, template = one_cluster(region=None, instance_type="trn1.32xlarge", nodes=2)
    assert cluster.availability_zone_id is None
    path_result = synth(lambda app: [_agnostic(app)], cli_context())
    assert lint(path_result.template_paths["Agnostic"], catalog.get("trn1.32xlarge").regions) == []


def _agnostic(app):
    stack = cdk.Stack(app, "Agnostic")
    TrainingCluster(stack, "Cluster", engine="nodes", instance_type="trn1.32xlarge", nodes=2)
    return stack


def test_concrete_agrees_with_aws_cdk_on_tokens_and_plain_values():
    """validation.concrete answers strings and ints without asking jsii; it must agree with Token.is_unresolved."""
    from mlcdk.constructs.validation import concrete

    stack = cdk.Stack(cdk.App(), "Tokens")
    values = [
        stack.region, stack.account, cdk.Aws.REGION, f"prefix-{stack.region}",
        cdk.CfnParameter(stack, "S").value_as_string, cdk.Fn.join("-", ["a", stack.region]),
        "us-east-1", "", "plain ${not a token}", 0, 7, True,
        cdk.CfnParameter(stack, "N", type="Number").value_as_number, 2.5,
    ]
    for value in values:
        assert concrete(value) is (not cdk.Token.is_unresolved(value)), value
    assert concrete(None) is False


# --------------------------------------------------------------------------------------------
# Deploy-time limits at synth time, tokens, refuse-or-warn (issue 14)
# --------------------------------------------------------------------------------------------

def _schedule(stop="0 20 * * 1-5", start="0 7 * * 1-5", time_zone="UTC"):
    return ScaleSchedule(stop=stop, start=start, time_zone=time_zone)


def _storage(**kwargs):
    return StorageOptions(**{"data_volume_size_gib": 100, **kwargs})


#: (id, TrainingCluster keyword arguments in us-east-1, expected message). Each names the parameter, the value and
#: what is allowed.
BAD_INPUT = [
    ("schedule-words", dict(instance_type="g5.xlarge", engine="nodes", schedule=_schedule(stop="every night")),
     r"schedule.stop \('every night'\) has 2 field\(s\); Auto Scaling takes five cron fields \(minute hour "
     r"day-of-month month day-of-week\), e.g. '0 20 \* \* 1-5'"),
    ("schedule-eventbridge", dict(instance_type="g5.xlarge", engine="nodes", schedule=_schedule(stop="cron(0 20 * * ? *)")),
     r"schedule.stop \('cron\(0 20 \* \* \? \*\)'\) is EventBridge schedule syntax; Auto Scaling takes the five "
     r"plain cron fields"),
    ("schedule-question-mark", dict(instance_type="g5.xlarge", engine="nodes", schedule=_schedule(start="0 7 ? * MON")),
     r"schedule.start \('0 7 \? \* MON'\) uses '\?', which is EventBridge syntax"),
    ("schedule-hour-24", dict(instance_type="g5.xlarge", engine="nodes", schedule=_schedule(stop="0 24 * * *")),
     r"schedule.stop \('0 24 \* \* \*'\) its hour field has '24'; allowed: 0-23"),
    ("schedule-time-zone", dict(instance_type="g5.xlarge", engine="nodes", schedule=_schedule(time_zone="Mars/Base")),
     r"schedule.time_zone \('Mars/Base'\) is not an IANA time zone name"),
    ("grace-3h-nodes", dict(instance_type="g5.xlarge", engine="nodes", checkpoint_grace_period=cdk.Duration.hours(3)),
     r"checkpoint_grace_period \(3 hours\) must be a whole number of seconds from 30 s to 7,200 s"),
    ("grace-10s-batch", dict(instance_type="g5.xlarge", checkpoint_grace_period=cdk.Duration.seconds(10)),
     r"checkpoint_grace_period \(10 seconds\) must be a whole number of seconds from 30 s to 7,200 s"),
    ("grace-fraction", dict(instance_type="g5.xlarge", engine="nodes", checkpoint_grace_period=cdk.Duration.millis(30500)),
     r"checkpoint_grace_period \(30 seconds 500 millis\) must be a whole number of seconds"),
    ("gp3-iops-per-gib", dict(instance_type="g5.xlarge", storage=_storage(data_volume_size_gib=10, data_volume_iops=6000)),
     r"storage.data_volume_iops \(6000\) exceeds gp3's 500 IOPS per GiB: a 10 GiB volume takes at most 5,000 IOPS"),
    ("gp3-throughput-per-iops", dict(instance_type="g5.xlarge", storage=_storage(data_volume_throughput_mibs=1000)),
     r"storage.data_volume_throughput_mibs \(1000\) exceeds gp3's 0.25 MiB/s per IOPS: 3,000 IOPS allow at most 750"),
    ("mount-space", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/my data")),
     r"storage.data_mount_point \('/my data'\) must be an absolute path of letters, digits"),
    ("mount-quote", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/data';reboot;'")),
     r"storage.data_mount_point \(\"/data';reboot;'\"\) must be an absolute path of letters"),
    ("mount-root", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/")),
     r"storage.data_mount_point \('/'\) must not be / \(the root file system\)"),
    ("mount-etc", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/etc")),
     r"storage.data_mount_point \('/etc'\) is owned by the OS"),
    ("mount-proc", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/proc/data")),
     r"storage.data_mount_point \('/proc/data'\) lies inside /proc, which is owned by the kernel"),
    ("mount-dot-dot", dict(instance_type="g5.xlarge", storage=_storage(data_mount_point="/data/../etc")),
     r"storage.data_mount_point \('/data/../etc'\) must not contain '.' or '..' components"),
    ("user-data-string", dict(instance_type="g5.xlarge", user_data_commands="echo hi"),
     r"user_data_commands \('echo hi'\) must be a list"),
    ("cost-infinite", dict(instance_type="g5.xlarge", max_hourly_cost_usd=float("inf")),
     r"max_hourly_cost_usd \(inf\) must be a finite number"),
    ("percent-nan", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(low_utilization_percent=float("nan"))),
     r"low_utilization_percent \(nan\) must be a finite number"),
    ("percent-above-100", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(high_memory_percent=150)),
     r"guardrails.high_memory_percent \(150\) must be a number above 0 and at most 100"),
    ("percent-negative", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(low_utilization_percent=-5)),
     r"guardrails.low_utilization_percent \(-5\) must be a number above 0 and at most 100"),
    ("hours-infinite", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(low_utilization_hours=float("inf"))),
     r"low_utilization_hours \(inf\) must be a finite number"),
    ("budget-negative", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(monthly_budget_usd=-1)),
     r"guardrails.monthly_budget_usd \(-1\) must be a number above 0 and at most 730000000"),
    ("billing-infinite", dict(instance_type="g5.xlarge", guardrails=GuardrailOptions(billing_alarm_usd=float("inf"))),
     r"billing_alarm_usd \(inf\) must be a finite number"),
    ("inference-only", dict(instance_type="inf2.48xlarge", nodes=2),
     r"instance_type: inf2.48xlarge cannot train: Inferentia2 is inference-only"),
    ("fallbacks-one-string", dict(instance_type="g5.12xlarge", purchase=PurchaseOptions(fallback_instance_types="g5.24xlarge")),
     r"fallback_instance_types \('g5.24xlarge'\)"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in BAD_INPUT])
def test_deploy_time_limits_fail_at_synth_before_any_resource(kwargs, message):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=REGION))
    with pytest.raises(ConfigurationError, match=message):
        TrainingCluster(stack, "Cluster", **kwargs)
    assert nothing_built(stack, "Cluster")


#: Five-field cron as Auto Scaling's Recurrence takes it, and forms it refuses (checked without any synth).
GOOD_CRON = ["0 20 * * 1-5", "*/15 * * * *", "30 0 1 1,6,12 *", "0 7 * JAN-MAR MON-FRI", "0 0 * * sun", "0 8-18/2 * * *",
             "5 4 * * 0", "59 23 31 12 6", "0 0 1/5 * *", "  0 20 * * 1-5  "]
BAD_CRON = {
    "every night": "has 2 field(s)", "cron(0 20 * * ? *)": "EventBridge schedule syntax", "@daily": "has 1 field(s)",
    "0 20 * * ? *": "has 6 field(s)", "0 20 ? * MON": "uses '?'", "60 * * * *": "minute field has '60'",
    "0 24 * * *": "hour field has '24'", "0 0 0 * *": "day-of-month field has '0'", "0 0 32 * *": "day-of-month field has '32'",
    "0 0 * 13 *": "month field has '13'", "0 0 * * 7": "Sunday is 0 or SUN", "0 0 * * MON-SUN": "runs backwards",
    "0 0 L * *": "day-of-month field has 'L'", "0 0 * * 1#2": "is not a value, range, step or list",
    "*/0 * * * *": "a step runs from 1 to 60", "0 0 15W * *": "day-of-month field has '15W'", "0,,5 * * * *": "is not a value",
    "0 0 * FOO *": "month field has 'FOO'", "-1 * * * *": "is not a value",
}


@pytest.mark.parametrize("expression", GOOD_CRON)
def test_auto_scaling_cron_expressions_are_accepted(expression):
    from mlcdk.constructs.limits import cron_problem
    assert cron_problem(expression) is None


@pytest.mark.parametrize(("expression", "problem"), BAD_CRON.items())
def test_cron_forms_auto_scaling_refuses_are_named(expression, problem):
    from mlcdk.constructs.limits import cron_problem
    assert problem in (cron_problem(expression) or "")


def test_a_grace_period_token_passes_on_nodes_and_is_refused_on_batch():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Grace", env=cdk.Environment(region=REGION))
    seconds = cdk.CfnParameter(stack, "Grace", type="Number", default=600).value_as_number
    cluster = TrainingCluster(stack, "Nodes", engine="nodes", instance_type="g5.xlarge",
                              checkpoint_grace_period=cdk.Duration.seconds(seconds))
    assert stack.resolve(cluster.auto_scaling_group.node.find_child("LifecycleHookCheckpointOnTermination")
                         .node.default_child.heartbeat_timeout) == {"Ref": "Grace"}
    with pytest.raises(ConfigurationError, match=r"checkpoint_grace_period: engine='batch' writes it into the nodes' "
                                                 r"ECS configuration at synth time"):
        TrainingCluster(stack, "Batch", instance_type="g5.xlarge", checkpoint_grace_period=cdk.Duration.seconds(seconds))


def _warnings(stack) -> list[str]:
    found = cdk.assertions.Annotations.from_stack(stack).find_warning("*", Match.any_value())
    return [str(w.entry.data) for w in found]


def test_multi_node_cluster_of_a_type_without_efa_warns_that_collectives_use_tcp():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Tcp", env=cdk.Environment(region=REGION))
    TrainingCluster(stack, "Cluster", engine="nodes", instance_type="g4dn.xlarge", nodes=4)
    efa = cdk.Stack(stack.node.scope, "Efa", env=cdk.Environment(region=REGION))
    TrainingCluster(efa, "Cluster", engine="nodes", instance_type="trn1.32xlarge", nodes=2)
    assert [w for w in _warnings(stack) if "g4dn.xlarge has no EFA: the 4 nodes' collectives will run over TCP" in w]
    assert not [w for w in _warnings(efa) if "collectives will run over TCP" in w]


def test_dropped_preset_fallbacks_are_named_with_the_reason():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Drop", env=cdk.Environment(region=REGION))
    cluster = TrainingCluster(stack, "Cluster", engine="nodes", preset="llm-pretrain-trainium", availability_zone_id="use1-az4")
    assert cluster.instance_types == ("trn1.32xlarge",)
    assert [w for w in _warnings(stack) if "preset fallback types not used with trn1.32xlarge: trn1n.32xlarge (it is "
                                           "not offered in the cluster's AZ use1-az4)" in w]


def test_env_agnostic_stacks_keep_only_fallbacks_offered_wherever_the_type_is():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Anywhere")
    cluster = TrainingCluster(stack, "Cluster", engine="nodes", preset="llm-pretrain-trainium")
    assert cluster.instance_types == ("trn1.32xlarge",)
    (warning,) = [w for w in _warnings(stack) if "preset fallback types not used" in w]
    assert "trn1n.32xlarge (the stack is env-agnostic and it is not offered in ap-south-1, ap-southeast-2, " \
           "ap-southeast-4, where trn1.32xlarge is)" in warning
    with pytest.raises(ConfigurationError, match=r"purchase.fallback_instance_types: trn1n.32xlarge cannot replace "
                                                 r"trn1.32xlarge: the stack is env-agnostic"):
        TrainingCluster(stack, "Explicit", engine="nodes", instance_type="trn1.32xlarge",
                        purchase=PurchaseOptions(fallback_instance_types=("trn1n.32xlarge",)))


def test_an_az_id_with_a_vpc_not_pinned_by_az_id_is_refused_not_ignored():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Byo", env=cdk.Environment(region="us-west-2"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    with pytest.raises(ConfigurationError, match=r"availability_zone_id \(usw2-az4\): the VPC you brought does not pin "
                                                 r"its subnets by AZ ID .* build the VPC with PrivateNetwork"):
        TrainingCluster(stack, "Cluster", engine="nodes", instance_type="trn1.32xlarge", vpc=vpc,
                        availability_zone_id="usw2-az4")
    assert nothing_built(stack, "Cluster")
    cluster = TrainingCluster(stack, "Unpinned", engine="nodes", instance_type="g5.xlarge", vpc=vpc)
    assert cluster.availability_zone_id is None  # no AZ ID is reported that the nodes may not be in


def test_recommendation_is_declared_and_none_without_a_workload():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Plain", env=cdk.Environment(region=REGION))
    assert TrainingCluster(stack, "Cluster", instance_type="g5.xlarge").recommendation is None


# --------------------------------------------------------------------------------------------
# Behaviours a one-line change would break: specific resources and values
# --------------------------------------------------------------------------------------------


def test_the_data_volume_is_encrypted_with_the_clusters_own_key():
    cluster, template = one_cluster(instance_type="trn1.2xlarge", storage=StorageOptions(data_volume_size_gib=500))
    stack = cdk.Stack.of(cluster)
    key = {"Fn::GetAtt": [stack.get_logical_id(cluster.encryption_key.node.default_child), "Arn"]}
    mappings = {m["DeviceName"]: m["Ebs"] for m in launch_template_data(template)["BlockDeviceMappings"]}
    assert mappings["/dev/sdf"]["KmsKeyId"] == key and mappings["/dev/sdf"]["Encrypted"] is True
    assert mappings["/dev/sda1"]["KmsKeyId"] == key


def test_only_this_group_lifecycle_actions_are_granted_to_the_node_role():
    cluster, template = one_cluster(instance_type="g5.xlarge")
    stack = cdk.Stack.of(cluster)
    statements = [(p["PolicyName"], p["Roles"], s) for p in resources(template, "AWS::IAM::Policy")
                  for s in p["PolicyDocument"]["Statement"]
                  if any(a.startswith("autoscaling:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    (_, roles, statement), = statements
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    assert statement["Resource"] == stack.resolve(cluster.auto_scaling_group.auto_scaling_group_arn)
    assert roles == [{"Ref": stack.get_logical_id(cluster.role.node.default_child)}]


def test_an_on_demand_group_with_fallbacks_buys_every_node_on_demand():
    cluster, template = one_cluster(instance_type="trn1.32xlarge", nodes=2, availability_zone_id="use1-az6",
                                    purchase=PurchaseOptions(fallback_instance_types=("trn1n.32xlarge",)))
    (asg,) = resources(template, "AWS::AutoScaling::AutoScalingGroup")
    distribution = asg["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 100
    assert distribution["OnDemandBaseCapacity"] == 0
    assert distribution["OnDemandAllocationStrategy"] == "prioritized"
    assert "CapacityRebalance" not in asg
