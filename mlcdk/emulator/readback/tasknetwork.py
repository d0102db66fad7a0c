"""Read-back of what a Batch job's containers get on the network (issue #21, points 1, 2 and 10): the security group
of their awsvpc task interfaces with its rules, the free slots on network card 0 where ECS attaches those interfaces,
and the job queue's limits on jobs stuck in RUNNABLE.

With no ``SecurityGroupIds`` on the compute environment, Batch gives the task interfaces the default security group
of the subnets' VPC (Batch user guide, "Compute environment considerations for MNP"); mlcdk's rules on it are
explicit resources (mlcdk.constructs.batch_network). moto does not model AWS::EC2::SecurityGroupEgress, nor keep a
queue's JobStateTimeLimitActions: those are printed as the template declares them, and say so.
"""
from __future__ import annotations

import json
from typing import Any

from mlcdk.emulator.readback._view import Section, StackView
from mlcdk.emulator.readback.network import rule_text


def card0_line(data: dict[str, Any]) -> str | None:
    """Network card 0 of a node: its interface limit (the catalog's), what the launch template puts there, and the
    free slots left for the job container's task interface. None without network interfaces."""
    from mlcdk.presets import catalog

    interfaces = data.get("NetworkInterfaces", [])
    if not interfaces or data.get("InstanceType") not in catalog.default_catalog():
        return None
    limits = {card.index: card.maximum_network_interfaces for card in catalog.get(data["InstanceType"]).network_cards}
    limit = limits.get(0)
    used = [i for i in interfaces if int(i.get("NetworkCardIndex", 0)) == 0]
    kinds = ", ".join(f"{i.get('InterfaceType', 'interface')} at device {i.get('DeviceIndex')}" for i in used)
    free = None if limit is None else limit - len(used)
    return (f"    network card 0: {len(used)} of {limit if limit is not None else '?'} interface slots used ({kinds}); "
            f"free for the job containers' awsvpc task interface: {free if free is not None else '?'}"
            + (" - NONE: ECS cannot attach the task interface" if free == 0 else ""))


def _task_group(view: StackView, subnets: list[str]) -> None:
    """The default group of the subnets' VPC, its rules as the emulator holds them, and its declared egress."""
    ec2 = view.clients("ec2")
    vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                   {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    if not groups:
        return
    group = groups[0]
    view.line(f"    job containers' task interface: security group {group['GroupId']} (the default group of {vpc})")
    for permission in group.get("IpPermissions", []) or [None]:
        view.line(f"      ingress: {rule_text(permission, group['GroupId']) if permission else 'none'}")
    for permission in group.get("IpPermissionsEgress", []):
        view.line(f"      egress:  {rule_text(permission, group['GroupId'])}")
    for rule in view.declared_of_type("AWS::EC2::SecurityGroupEgress"):
        props = rule.get("Properties", {})
        if "DefaultSecurityGroup" in json.dumps(props.get("GroupId")):
            what = "all traffic" if props.get("IpProtocol") == "-1" else props.get("IpProtocol")
            view.line(f"      egress (declared; moto does not model AWS::EC2::SecurityGroupEgress): {what} "
                      f"{props.get('CidrIp') or 'another group'} - {props.get('Description', '')}")


def describe_task_network(view: StackView) -> None:
    environments = [c.physical for c in view.of_type("AWS::Batch::ComputeEnvironment")]
    batch, ec2 = view.clients("batch"), view.clients("ec2")
    for environment in batch.describe_compute_environments(computeEnvironments=environments)["computeEnvironments"] \
            if environments else []:
        resources = environment.get("computeResources", {})
        view.line(f"  Batch job network of {environment['computeEnvironmentName']}")
        spec = resources.get("launchTemplate", {})
        if spec.get("launchTemplateId"):
            version = ec2.describe_launch_template_versions(LaunchTemplateId=spec["launchTemplateId"], Versions=[
                str(spec.get("version", "$Default"))])["LaunchTemplateVersions"][0]
            if (line := card0_line(version["LaunchTemplateData"])) is not None:
                view.line(line)
        if resources.get("subnets"):
            _task_group(view, resources["subnets"])
    for queue in view.of_type("AWS::Batch::JobQueue"):
        for limit in view.properties(queue.logical).get("JobStateTimeLimitActions", []):
            view.line(f"  job queue limit: {limit.get('Action')} a job {limit.get('State')} for "
                      f"{limit.get('MaxTimeSeconds')} s with reason {limit.get('Reason')} (declared; moto does not keep "
                      "it)")


SECTIONS = (Section("batch job network", describe_task_network),)
