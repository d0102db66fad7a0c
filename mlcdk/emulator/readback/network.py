"""Read-back of the security groups: every ingress and egress rule, and the egress rules moto does not model."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mlcdk.emulator.readback._view import Clients, Section, StackView


def rule_text(permission: dict[str, Any], own_group: str) -> str:
    """"tcp 988-988 sg-0123", "all traffic itself (self reference)": one rule of a security group."""
    protocol = permission.get("IpProtocol", "?")
    what = "all traffic" if protocol == "-1" else f"{protocol} {permission.get('FromPort')}-{permission.get('ToPort')}"
    peers = [r["CidrIp"] for r in permission.get("IpRanges", [])]
    peers += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
    peers += ["itself (self reference)" if p.get("GroupId") == own_group else p.get("GroupId", "?")
              for p in permission.get("UserIdGroupPairs", [])]
    peers += [p.get("PrefixListId", "?") for p in permission.get("PrefixListIds", [])]
    return f"{what} {'/'.join(peers) or '(no peer)'}"


def describe_security_groups(view: StackView) -> None:
    ec2 = view.clients("ec2")
    declared_egress = view.declared_of_type("AWS::EC2::SecurityGroupEgress")
    for resource in view.of_type("AWS::EC2::SecurityGroup"):
        group = ec2.describe_security_groups(GroupIds=[resource.physical])["SecurityGroups"][0]
        view.keep("security groups", group["GroupId"], f"security group {group['GroupId']}", resource.logical)
        view.line(f"  security group {group['GroupId']} ({group.get('Description', '')})")
        for permission in group.get("IpPermissions", []):
            view.line(f"    ingress: {rule_text(permission, group['GroupId'])}")
        if not group.get("IpPermissions"):
            view.line("    ingress: none")
        for permission in group.get("IpPermissionsEgress", []):
            view.line(f"    egress:  {rule_text(permission, group['GroupId'])}")
        if declared_egress:
            view.line(f"    (the template also declares {len(declared_egress)} AWS::EC2::SecurityGroupEgress rule(s), "
                      f"e.g. '{declared_egress[0].get('Properties', {}).get('Description', '')}'; moto does not model "
                      "that type)")


def security_groups_still_there(clients: Clients, ids: Collection[str]) -> set[str]:
    return {g["GroupId"] for g in clients("ec2").describe_security_groups()["SecurityGroups"]} & set(ids)


SECTIONS = (Section("security groups", describe_security_groups, security_groups_still_there),)
