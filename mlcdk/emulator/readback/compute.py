"""Read-back of the nodes: Auto Scaling groups with their launch templates, and the launch templates kept for the
leftover check (a Batch compute environment's template is printed by the Batch section)."""
from __future__ import annotations

import collections
from collections.abc import Collection
from typing import Any

from mlcdk.emulator.readback._view import Clients, Section, StackView


def describe_launch_template(view: StackView, version: dict[str, Any]) -> None:
    """The launch template version a group or compute environment launches: type, image, interfaces, IMDS, volumes."""
    data = version["LaunchTemplateData"]
    interfaces = data.get("NetworkInterfaces", [])
    kinds = collections.Counter(i.get("InterfaceType", "interface") for i in interfaces)
    public = any(i.get("AssociatePublicIpAddress") for i in interfaces)
    view.line(f"    launch template {version['LaunchTemplateId']} version {version['VersionNumber']}: "
              f"{data.get('InstanceType', '(type from the group)')}, image {data.get('ImageId', '?')}")
    view.line(f"      network interfaces: {len(interfaces)} ("
              + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
              + f"); EFA devices: {kinds.get('efa', 0) + kinds.get('efa-only', 0)}; "
              f"public IP: {'yes' if public else 'no'}; launch-template SecurityGroupIds: "
              f"{data.get('SecurityGroupIds') or 'none'}")
    metadata = data.get("MetadataOptions", {})
    view.line(f"      instance metadata: HttpTokens={metadata.get('HttpTokens', 'not set')}, "
              f"HttpPutResponseHopLimit={metadata.get('HttpPutResponseHopLimit', 'not set')}")
    for mapping in data.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        key = ebs.get("KmsKeyId", "")
        view.line(f"      volume {mapping.get('DeviceName')}: {ebs.get('VolumeSize')} GiB {ebs.get('VolumeType')}, "
                  f"encrypted {ebs.get('Encrypted')}, KMS key {key or 'none'}" + (view.key_label(key) if key else ""))


def _subnets_text(view: StackView, subnet_ids: list[str]) -> str:
    """Each subnet with its AZ and AZ ID, and where the template pinned an AZ ID that moto ignored."""
    pinned = {c.physical: view.properties(c.logical)["AvailabilityZoneId"] for c in view.of_type("AWS::EC2::Subnet")
              if "AvailabilityZoneId" in view.properties(c.logical)}
    subnets = view.clients("ec2").describe_subnets(SubnetIds=subnet_ids)["Subnets"] if subnet_ids else []
    texts = []
    for subnet in subnets:
        actual = subnet.get("AvailabilityZoneId", "?")
        wanted = pinned.get(subnet["SubnetId"], actual)
        texts.append(f"{subnet['SubnetId']} ({subnet['AvailabilityZone']}, {actual}"
                     + (f"; the template pins AZ ID {wanted}, which moto ignores" if wanted != actual else "") + ")")
    return ", ".join(texts)


def describe_groups(view: StackView) -> None:
    autoscaling, ec2 = view.clients("autoscaling"), view.clients("ec2")
    for resource in view.of_type("AWS::AutoScaling::AutoScalingGroup"):
        group = autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[resource.physical])["AutoScalingGroups"][0]
        name = group["AutoScalingGroupName"]
        view.keep("autoscaling", name, f"Auto Scaling group {name}", resource.logical)
        where = _subnets_text(view, [s for s in group.get("VPCZoneIdentifier", "").split(",") if s])
        view.line(f"  Auto Scaling group {name}")
        view.line(f"    size: min {group['MinSize']}, desired {group['DesiredCapacity']}, max {group['MaxSize']}; "
                  f"{len(group.get('Instances', []))} emulated instance(s); subnets: {where or 'none'}")
        mixed = group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
        spec = group.get("LaunchTemplate") or mixed.get("LaunchTemplateSpecification", {})
        if mixed.get("Overrides"):
            view.line("    instance types (mixed instances policy): "
                      + ", ".join(o["InstanceType"] for o in mixed["Overrides"]))
        if spec.get("LaunchTemplateId"):
            version = ec2.describe_launch_template_versions(
                LaunchTemplateId=spec["LaunchTemplateId"], Versions=[str(spec.get("Version", "$Latest"))]
            )["LaunchTemplateVersions"][0]
            describe_launch_template(view, version)


def groups_still_there(clients: Clients, names: Collection[str]) -> set[str]:
    found = clients("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"] for g in found} & set(names)


def keep_launch_templates(view: StackView) -> None:
    for resource in view.of_type("AWS::EC2::LaunchTemplate"):
        view.keep("launch templates", resource.physical, f"launch template {resource.physical}", resource.logical)


def templates_still_there(clients: Clients, ids: Collection[str]) -> set[str]:
    found = clients("ec2").describe_launch_templates()["LaunchTemplates"]
    return {t["LaunchTemplateId"] for t in found} & set(ids)


SECTIONS = (Section("autoscaling", describe_groups, groups_still_there),
            Section("launch templates", keep_launch_templates, templates_still_there))
