"""TrainingCluster(shared_storage=...): FSx for Lustre on both engines, its rules, links, mount, alarm and cost.

Expected values are written out from the FSx documentation and the sourced price in
mlcdk/presets/data/fsx.json (us-east-1: PERSISTENT_2 at 125 MB/s/TiB $0.145, SCRATCH_2 $0.140 per GB-month),
and the catalog's on-demand price of g5.12xlarge in us-east-1 ($5.672/h), not computed by the code under test.
"""
from __future__ import annotations

import json
import math

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from mlcdk import ConfigurationError, PrivateNetwork, TrainingCluster
from mlcdk.constructs.options import DataRepositoryLink, ExistingFileSystem, SharedStorageOptions
from mlcdk.presets import catalog
from tests.harness import cli_context, lint, nag_problems, synth, nothing_built

REGION = "us-east-1"
DATA = DataRepositoryLink(s3_uri="s3://example-datasets/imagenet/", path="/datasets")
#: stack -> (instance type, nodes, engine, region, options, removal policy)
CASES = {
    "BatchTrn": ("trn1.32xlarge", 2, "batch", REGION, SharedStorageOptions(data_repositories=(DATA,)),
                 cdk.RemovalPolicy.RETAIN),
    "NodesGpu": ("g5.12xlarge", 1, "nodes", REGION, SharedStorageOptions(free_capacity_alarm_percent=20),
                 cdk.RemovalPolicy.DESTROY),
    "BatchGpuScratch": ("g5.12xlarge", 1, "batch", REGION,
                        SharedStorageOptions(deployment_type="SCRATCH_2", storage_capacity_gib=2400),
                        cdk.RemovalPolicy.RETAIN),
    "AgnosticNodesTrn": ("trn1.32xlarge", 2, "nodes", None, SharedStorageOptions(), cdk.RemovalPolicy.RETAIN),
}


@pytest.fixture(scope="module")
def built():
    clusters = {}

    def build(app):
        stacks = []
        for name, (instance_type, nodes, engine, region, options, removal) in CASES.items():
            stack = cdk.Stack(app, name, env=cdk.Environment(region=region) if region else None)
            clusters[name] = TrainingCluster(stack, "Cluster", instance_type=instance_type, nodes=nodes, engine=engine,
                                             shared_storage=options, removal_policy=removal)
            stacks.append(stack)
        return stacks

    return synth(build, cli_context()), clusters


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def only(template: dict, kind: str) -> tuple[str, dict]:
    (item,) = resources(template, kind).items()
    return item


def logical_id(construct) -> str:
    child = construct.node.default_child if construct.node.default_child is not None else construct
    return cdk.Stack.of(construct).get_logical_id(child)


def rendered(value) -> str:
    """A CloudFormation value as text: Fn::Join flattened, Ref and GetAtt shown as <Id> and <Id.Attribute>."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(rendered(v) for v in value)
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(rendered(p) for p in parts)
    if "Fn::Base64" in value:
        return rendered(value["Fn::Base64"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def user_data(template: dict) -> str:
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    return rendered(lt["Properties"]["LaunchTemplateData"]["UserData"])


def container(template: dict) -> dict:
    _, definition = only(template, "AWS::Batch::JobDefinition")
    properties = definition["Properties"]
    if properties["Type"] == "multinode":
        (node_range,) = properties["NodeProperties"]["NodeRangeProperties"]
        return node_range["Container"]
    return properties["ContainerProperties"]


def ids(built, name):
    cluster = built[1][name]
    storage = cluster.shared_storage
    return (logical_id(storage.file_system), logical_id(storage.security_group), logical_id(cluster.security_group),
            logical_id(cluster.encryption_key), logical_id(cluster.checkpoint_bucket))


# --------------------------------------------------------------------------------------------
# Network: TCP 988 and 1018-1023 between the two groups, nothing else
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_lustre_ports_988_and_1018_to_1023_flow_between_the_node_and_file_system_groups_only(built, name):
    template = built[0].templates[name]
    file_system, fs_group, node_group, *_ = ids(built, name)
    gid = {fs_group: "fs", node_group: "nodes"}
    rules = set()
    for kind, direction, peer_key in (("AWS::EC2::SecurityGroupIngress", "in", "SourceSecurityGroupId"),
                                      ("AWS::EC2::SecurityGroupEgress", "out", "DestinationSecurityGroupId")):
        for rule in resources(template, kind).values():
            p = rule["Properties"]
            group, peer = p["GroupId"]["Fn::GetAtt"][0], p.get(peer_key, {}).get("Fn::GetAtt", ["?"])[0]
            if fs_group in (group, peer):
                assert "CidrIp" not in p and "CidrIpv6" not in p, p
                rules.add((gid[group], direction, gid.get(peer, peer), p["IpProtocol"], p["FromPort"], p["ToPort"]))
    expected = {(group, direction, peer, "tcp", low, high)
                for low, high in ((988, 988), (1018, 1023))
                for group, peer in (("fs", "nodes"), ("nodes", "fs"), ("fs", "fs"))
                for direction in ("in", "out")}
    assert rules == expected
    group = template["Resources"][fs_group]["Properties"]
    assert "SecurityGroupIngress" not in group  # the L2's own 988-1023 self rule is not there
    # allow_all_outbound=False leaves CDK's placeholder, which matches no traffic; no 0.0.0.0/0 anywhere
    assert group["SecurityGroupEgress"] == [{"CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic",
                                             "FromPort": 252, "IpProtocol": "icmp", "ToPort": 86}]
    fs = template["Resources"][file_system]["Properties"]
    assert fs["SecurityGroupIds"] == [{"Fn::GetAtt": [fs_group, "GroupId"]}]


# --------------------------------------------------------------------------------------------
# The file system: type, capacity, key, subnet, removal
# --------------------------------------------------------------------------------------------


def test_persistent_2_is_encrypted_with_the_cluster_key_in_the_cluster_subnet(built):
    template = built[0].templates["BatchTrn"]
    file_system, _, _, key, _ = ids(built, "BatchTrn")
    fs = template["Resources"][file_system]["Properties"]
    assert fs["KmsKeyId"] == {"Ref": key}
    assert (fs["FileSystemType"], fs["FileSystemTypeVersion"], fs["StorageCapacity"]) == ("LUSTRE", "2.15", 1200)
    # LZ4 as in AWS's reference file system (parallelcluster-prerequisites.yaml); 125, not its 250: data/fsx.json.
    assert fs["LustreConfiguration"] == {"DeploymentType": "PERSISTENT_2", "PerUnitStorageThroughput": 125,
                                         "DataCompressionType": "LZ4"}
    _, environment = only(template, "AWS::Batch::ComputeEnvironment")
    assert fs["SubnetIds"] == environment["Properties"]["ComputeResources"]["Subnets"]


def test_scratch_2_takes_no_throughput_and_no_customer_key(built):
    fs = built[0].templates["BatchGpuScratch"]["Resources"][ids(built, "BatchGpuScratch")[0]]["Properties"]
    assert fs["LustreConfiguration"] == {"DeploymentType": "SCRATCH_2", "DataCompressionType": "LZ4"}
    assert "KmsKeyId" not in fs and fs["StorageCapacity"] == 2400 and fs["FileSystemTypeVersion"] == "2.15"


@pytest.mark.parametrize(("name", "policy"), [("BatchTrn", "Retain"), ("NodesGpu", "Delete")])
def test_file_system_and_links_follow_the_removal_policy(built, name, policy):
    template = built[0].templates[name]
    fs = template["Resources"][ids(built, name)[0]]
    assert (fs["DeletionPolicy"], fs["UpdateReplacePolicy"]) == (policy, policy)
    links = resources(template, "AWS::FSx::DataRepositoryAssociation").values()
    assert links and all(link["DeletionPolicy"] == policy for link in links)


@pytest.mark.parametrize("name", ["BatchTrn", "NodesGpu"])
def test_nodes_start_only_after_the_file_system_and_its_links(built, name):
    template = built[0].templates[name]
    cluster = built[1][name]
    nodes = cluster.auto_scaling_group or cluster.compute_environment
    depends = set(template["Resources"][logical_id(nodes)].get("DependsOn", []))
    links = set(resources(template, "AWS::FSx::DataRepositoryAssociation"))
    assert {ids(built, name)[0], *links} <= depends


# --------------------------------------------------------------------------------------------
# Links to S3 and the key
# --------------------------------------------------------------------------------------------


def test_checkpoint_bucket_is_linked_both_ways_and_data_read_only(built):
    template = built[0].templates["BatchTrn"]
    file_system, _, _, _, bucket = ids(built, "BatchTrn")
    links = {r["Properties"]["FileSystemPath"]: r["Properties"]
             for r in resources(template, "AWS::FSx::DataRepositoryAssociation").values()}
    assert set(links) == {"/checkpoints", "/datasets"}
    events = {"Events": ["NEW", "CHANGED", "DELETED"]}
    checkpoint = links["/checkpoints"]
    assert checkpoint["FileSystemId"] == {"Ref": file_system}
    assert checkpoint["DataRepositoryPath"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket}]]}
    assert checkpoint["S3"] == {"AutoImportPolicy": events, "AutoExportPolicy": events}
    assert checkpoint["BatchImportMetaDataOnCreate"] is True
    data = links["/datasets"]
    assert data["DataRepositoryPath"] == "s3://example-datasets/imagenet/"
    assert data["S3"] == {"AutoImportPolicy": events}  # read-only: nothing is exported


def test_only_fsx_s3_role_may_use_the_bucket_key_and_only_through_s3(built):
    template = built[0].templates["BatchTrn"]
    key = ids(built, "BatchTrn")[3]
    statements = template["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
    (statement,) = [s for s in statements if s.get("Sid") == "FsxS3AccessForCheckpointLink"]
    assert statement["Principal"] == {"AWS": "*"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*",
                                           "kms:ReEncrypt*"]
    condition = statement["Condition"]
    assert rendered(condition["StringEquals"]["kms:ViaService"]) == "s3.us-east-1.amazonaws.com"
    assert rendered(condition["StringEquals"]["kms:CallerAccount"]) == "<AWS::AccountId>"
    assert rendered(condition["ArnLike"]["aws:PrincipalArn"]) == (
        "arn:aws:iam::<AWS::AccountId>:role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/"
        "AWSServiceRoleForFSxS3Access_fs-*")


# --------------------------------------------------------------------------------------------
# Mount on both engines, the Batch volume, the Neuron cache
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_every_node_installs_the_client_and_mounts_at_fsx(built, name):
    text = user_data(built[0].templates[name])
    file_system = ids(built, name)[0]
    region = "us-east-1" if CASES[name][3] else "<AWS::Region>"
    source = f"<{file_system}>.fsx.{region}.<AWS::URLSuffix>@tcp:/<{file_system}.LustreMountName>"
    assert f"mount -t lustre -o relatime,flock {source} /fsx" in text
    # No network.service dependency: AL2023 and Ubuntu have none (systemd-networkd), and _netdev orders the mount
    # after network-online.target (systemd.mount(5)).
    assert f"{source} /fsx lustre defaults,relatime,flock,_netdev,x-systemd.automount 0 0" in text
    assert "network.service" not in text
    assert f"mountpoint -q /fsx || {{ echo \"mlcdk: /fsx is not mounted\" >&2; exit 1; }}" in text
    assert "amzn:2023*) dnf install -y lustre-client" in text  # ECS-optimized AMIs (Batch), emulator AMI
    assert "amzn:2) amazon-linux-extras install -y lustre" in text
    assert 'install -y "lustre-client-modules-$(uname -r)"' in text  # the Ubuntu DLAMIs (nodes)
    assert "https://fsx-lustre-client-repo.s3.amazonaws.com/ubuntu ${VERSION_CODENAME} main" in text
    assert text.index("mount -t lustre") < text.index("# user commands")


def test_batch_jobs_see_the_host_mount_as_a_volume(built):
    for name in ("BatchTrn", "BatchGpuScratch"):
        spec = container(built[0].templates[name])
        assert spec["Volumes"] == [{"Host": {"SourcePath": "/fsx"}, "Name": "shared-storage"}]
        assert spec["MountPoints"] == [{"ContainerPath": "/fsx", "SourceVolume": "shared-storage"}]  # read-write


def test_neuron_compile_cache_is_shared_on_trainium_and_absent_on_gpus(built):
    trn = {e["Name"]: e["Value"] for e in container(built[0].templates["BatchTrn"])["Environment"]}
    gpu = {e["Name"]: e["Value"] for e in container(built[0].templates["BatchGpuScratch"])["Environment"]}
    assert trn["NEURON_COMPILE_CACHE_URL"] == "/fsx/neuron-cache" and trn["MLCDK_SHARED_STORAGE"] == "/fsx"
    assert "NEURON_COMPILE_CACHE_URL" not in gpu and gpu["MLCDK_SHARED_STORAGE"] == "/fsx"
    assert "echo NEURON_COMPILE_CACHE_URL=/fsx/neuron-cache >> /etc/environment" in user_data(
        built[0].templates["AgnosticNodesTrn"])
    assert "NEURON_COMPILE_CACHE_URL" not in user_data(built[0].templates["NodesGpu"])


# --------------------------------------------------------------------------------------------
# Guardrails: free-capacity alarm, cost, budget
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "percent"), [("BatchTrn", 10), ("NodesGpu", 20)])
def test_free_capacity_alarm_compares_free_bytes_with_the_capacity(built, name, percent):
    template = built[0].templates[name]
    (alarm,) = [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()
                if "shared file system" in r["Properties"]["AlarmDescription"]]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
        percent, "LessThanThreshold", 5)
    expression, free = alarm["Metrics"]
    assert expression["Expression"] == f"100 * free / {1200 * 1024 ** 3}"  # 1,200 GiB in bytes
    metric = free["MetricStat"]
    assert (metric["Metric"]["Namespace"], metric["Metric"]["MetricName"], metric["Stat"], metric["Period"]) == (
        "AWS/FSx", "FreeDataStorageCapacity", "Sum", 60)
    assert metric["Metric"]["Dimensions"] == [{"Name": "FileSystemId", "Value": {"Ref": ids(built, name)[0]}}]


@pytest.mark.parametrize(("name", "expected"), [
    ("NodesGpu", 4314.56),         # 1 x 5.672 x 730 = 4140.56, plus 1,200 GiB x 0.145 = 174.00
    ("BatchGpuScratch", 4476.56),  # 4140.56, plus 2,400 GiB x 0.140 = 336.00
])
def test_estimated_monthly_cost_and_budget_include_the_file_system(built, name, expected):
    assert catalog.get("g5.12xlarge").on_demand_price(REGION) == 5.672  # the figure the literals assume
    template = built[0].templates[name]
    (output,) = [o for k, o in template["Outputs"].items() if k.startswith("ClusterGuardrailsEstimatedMonthlyCostUsd")]
    assert output["Value"] == f"{expected:.2f}"
    assert "plus FSx for Lustre" in output["Description"] and "as of 2026-12-01" in output["Description"]
    _, budget = only(template, "AWS::Budgets::Budget")
    assert math.isclose(budget["Properties"]["Budget"]["BudgetLimit"]["Amount"], expected)


def test_unknown_price_is_a_warning_not_a_guess():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "West", env=cdk.Environment(region="us-west-2"))
    cluster = TrainingCluster(stack, "Cluster", instance_type="g5.12xlarge", shared_storage=SharedStorageOptions())
    assert cluster.shared_storage.monthly_cost_usd is None
    warnings = [str(m.data) for c in cluster.node.find_all() for m in c.node.metadata if m.type == "aws:cdk:warning"]
    assert any("no sourced FSx for Lustre price for PERSISTENT_2 at 125 MB/s/TiB in us-west-2" in w for w in warnings)
    assert cluster.guardrails.monthly_cost_at_full_size == round(catalog.get("g5.12xlarge").on_demand_price("us-west-2")
                                                                 * 730, 2)


def test_a_file_system_you_bring_is_mounted_with_rules_on_its_group_and_no_cost():
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Byo", env=cdk.Environment(region=REGION))
    network = PrivateNetwork(stack, "Network", availability_zone_ids=("use1-az4",))
    existing = ExistingFileSystem(file_system_id="fs-0123456789abcdef0",
                                  dns_name="fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com", mount_name="abcdefgh",
                                  security_group_id="sg-0123456789abcdef0")
    cluster = TrainingCluster(stack, "Cluster", instance_type="g5.12xlarge", vpc=network.vpc, engine="nodes",
                              shared_storage=SharedStorageOptions(existing_file_system=existing))
    template = app.synth().get_stack_by_name("Byo").template
    assert not resources(template, "AWS::FSx::FileSystem") and cluster.shared_storage.monthly_cost_usd is None
    assert ("mount -t lustre -o relatime,flock fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com@tcp:/abcdefgh /fsx"
            in user_data(template))
    on_theirs = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
                 if r["Properties"]["GroupId"] == "sg-0123456789abcdef0"]
    assert sorted((r["FromPort"], r["ToPort"]) for r in on_theirs) == [(988, 988), (1018, 1023)]
    (link,) = resources(template, "AWS::FSx::DataRepositoryAssociation").values()
    assert link["Properties"]["FileSystemId"] == "fs-0123456789abcdef0"


# --------------------------------------------------------------------------------------------
# Gates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_cfn_lint_passes(built, name):
    instance_type, _, _, region, *_ = CASES[name]
    regions = [region] if region else catalog.get(instance_type).regions
    assert lint(built[0].template_paths[name], regions) == []


def test_nag_packs_pass(built):
    assert nag_problems(built[0]) == []


# --------------------------------------------------------------------------------------------
# Bad input: each a ConfigurationError naming the value, before any resource exists
# --------------------------------------------------------------------------------------------


def _vpc(stack, vpc_id: str = "vpc-0aaa"):
    return ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id=vpc_id, availability_zones=["us-east-1a"],
                                       private_subnet_ids=["subnet-0aaa"])


def _existing(vpc_id: str | None = "vpc-0bbb") -> ExistingFileSystem:
    return ExistingFileSystem(file_system_id="fs-0123456789abcdef0", dns_name="fs.example", mount_name="abcdefgh",
                              security_group_id="sg-0123456789abcdef0", vpc_id=vpc_id)


S = SharedStorageOptions
BAD = [
    (S(storage_capacity_gib=3000), r"shared_storage.storage_capacity_gib \(3000\) must be 1200, 2400 or a multiple of "
                                   r"2400 GiB for PERSISTENT_2"),
    (S(storage_capacity_gib="1200"), r"shared_storage.storage_capacity_gib \('1200'\) must be a whole number"),
    (S(storage_capacity_gib=True), r"shared_storage.storage_capacity_gib \(True\) must be a whole number"),
    (S(throughput_mbps_per_tib=200), r"shared_storage.throughput_mbps_per_tib \(200\) must be one of 125, 250, 500, "
                                     r"1000 for PERSISTENT_2"),
    (S(data_compression="GZIP"), r"shared_storage.data_compression \('GZIP'\) must be one of LZ4, NONE"),
    (S(deployment_type="SCRATCH_2", throughput_mbps_per_tib=125),
     r"shared_storage.throughput_mbps_per_tib \(125\): SCRATCH_2 has a fixed throughput"),
    (S(data_repositories=tuple(DataRepositoryLink(f"s3://example-data-{i}/", f"/data{i}") for i in range(8))),
     r"shared_storage: 9 data repository associations .* more than FSx allows \(8\)"),
    (S(data_repositories=(DataRepositoryLink("s3://example-data/", "datasets"),)),
     r"shared_storage.data_repositories\[0\].path \('datasets'\) must be an absolute file-system path"),
    (S(checkpoint_path="checkpoints"), r"shared_storage.checkpoint_path \('checkpoints'\) must be an absolute"),
    (S(mount_point="fsx"), r"shared_storage.mount_point \('fsx'\) must be an absolute path"),
    (S(mount_point="/fsx; rm -rf /"), r"shared_storage.mount_point \('/fsx; rm -rf /'\) must be an absolute path"),
    (S(deployment_type="SCRATCH_1"), r"shared_storage.deployment_type \('SCRATCH_1'\) cannot have data repository "
                                     r"associations .* 1 are asked for \('/checkpoints'\)"),
    (S(deployment_type="SCRATCH_1", checkpoint_path=None), r"shared_storage.deployment_type \('SCRATCH_1'\) is a "
                                                           r"previous FSx generation"),
    (S(deployment_type="PERSISTENT_1"), r"shared_storage.deployment_type \('PERSISTENT_1'\) is a previous FSx"),
    (S(deployment_type="persistent_2"), r"shared_storage.deployment_type \('persistent_2'\) must be one of "
                                        r"PERSISTENT_2, SCRATCH_2"),
    (S(free_capacity_alarm_percent=0), r"shared_storage.free_capacity_alarm_percent \(0\) must be a number above 0"),
    (S(free_capacity_alarm_percent=float("nan")), r"shared_storage.free_capacity_alarm_percent \(nan\)"),
    (S(free_capacity_alarm_percent=True), r"shared_storage.free_capacity_alarm_percent \(True\)"),
    (S(data_repositories=(DataRepositoryLink("example-data", "/datasets"),)),
     r"shared_storage.data_repositories\[0\].s3_uri \('example-data'\) must be an S3 URI"),
    (S(data_repositories=(DataRepositoryLink("s3://example-data/", "/checkpoints/data"),)),
     r"the association paths '/checkpoints' and '/checkpoints/data' overlap"),
    (S(data_repositories=[DataRepositoryLink("s3://a-data/", "/a"), "s3://b"]),
     r"shared_storage.data_repositories\[1\] \(.s3://b.\) must be a DataRepositoryLink\(...\)"),
    ({"storage_capacity_gib": 1200}, r"shared_storage \(\{'storage_capacity_gib': 1200\}\) must be a SharedStorageOptions"),
    (S(existing_file_system=_existing()), r"shared_storage.existing_file_system.vpc_id \(vpc-0bbb\) is not the "
                                          r"cluster's VPC \(vpc-0aaa\)"),
    (S(existing_file_system=_existing(None)), "NEW_VPC"),
]


@pytest.mark.parametrize(("options", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_bad_shared_storage_is_refused_before_any_resource(options, message):
    app = cdk.App(context=cli_context())
    stack = cdk.Stack(app, "Bad", env=cdk.Environment(region=REGION))
    kwargs = {}
    if message == "NEW_VPC":
        message = (r"shared_storage.existing_file_system \(fs-0123456789abcdef0\): the cluster would create a new "
                   r"VPC, which cannot reach it; pass vpc=")
    elif isinstance(options, SharedStorageOptions) and options.existing_file_system is not None:
        kwargs["vpc"] = _vpc(stack)
    with pytest.raises(ConfigurationError, match=message):
        TrainingCluster(stack, "Cluster", instance_type="g5.12xlarge", shared_storage=options, **kwargs)
    assert nothing_built(stack, "Cluster")  # nothing was built


def test_mount_lines_are_valid_bash(tmp_path):
    import subprocess

    from mlcdk.constructs.user_data import mount_lustre

    script = tmp_path / "mount.sh"
    script.write_text("\n".join(["set -euo pipefail", *mount_lustre("fs-1.fsx.us-east-1.amazonaws.com", "abcdefgh", "/fsx",
                                                                     neuron_cache="/fsx/neuron-cache")]) + "\n")
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True).returncode == 0
