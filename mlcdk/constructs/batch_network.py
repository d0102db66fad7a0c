"""A Batch node's network and metadata boundary: the job containers' security group, the EFA layout with a free
slot for their task interface, the metadata hop limit, and what a node does when it shuts itself down.

**Which group a job container's interface gets.** AWS Batch runs multi-node parallel jobs in the ECS ``awsvpc``
network mode: each node's container gets an interface of its own, which "will use the security groups specified
in your compute environment. If you don't specify a security group, the default security group for the VPC is
used" (Batch user guide, "Compute environment considerations for MNP", mnp-ce). The compute environment cannot
carry ``SecurityGroupIds``: with network interfaces in the launch template (every EFA interface) Batch refuses
it, "Either compute environment Security Groups or Network Interfaces in Launch template are exclusively allowed"
(aws-cdk #21577). Dropping the interfaces would drop EFA. So the task interfaces sit in **the VPC's default
security group**, and mlcdk gives that group explicit rules:

- all traffic from itself (the job's containers: torchrun's rendezvous, NCCL's and Neuron's bootstrap sockets);
- all traffic from the nodes' group, and the nodes' group all traffic from it (containers and nodes);
- egress anywhere (S3 through the gateway endpoint, ECR and the AWS APIs through the NAT gateway).

These are AWS's own defaults for a default group (all from itself, all out), which PrivateNetwork's
``Custom::VpcRestrictDefaultSG`` revokes; the rules are explicit resources created after that custom resource,
so the template states what the group allows and a deploy cannot race the revocation. The same rules hold on the
nodes' group (self traffic, egress anywhere), so a job works whichever of the two groups Batch gives the task
interface: the Batch user guide names the compute environment's groups, the ParallelCluster guide says "any
security groups that are applied to your compute resources are also applied to it".

A VPC you bring: an ``ec2.Vpc`` made in the app gets the same rules on its default group, with a warning
(``mlcdk:defaultSecurityGroupOpened``: every resource in that group can then reach the nodes); an imported VPC
(``Vpc.from_lookup``) cannot be changed here, and a warning (``mlcdk:taskNetworkUnmanaged``) lists the rules to
add.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mlcdk.constructs.efa import card0_free_slots, efa_interfaces
from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.warning_registry import warn
from mlcdk.presets.catalog import InstanceSpec

#: The metadata hop limit of a Batch node. Multi-node jobs run in awsvpc mode with ECS_AWSVPC_BLOCK_IMDS and
#: single-node jobs in host mode (Batch user guide, "Networking modes for AWS Batch jobs"): neither needs a second
#: hop, and a bridge-mode container started by hand on the node must not reach the instance role either (ECS
#: developer guide, "IAM roles for tasks"). AWS's p6 Batch template sets the same limit.
BATCH_HOP_LIMIT = 1
#: A node that shuts itself down (a failed bootstrap, user_data.guard_bootstrap) is terminated, not stopped, so
#: Batch's group replaces it and a stopped node keeps no volumes or reserved capacity (EC2 user guide, "Change
#: the instance initiated shutdown behavior").
SHUTDOWN_BEHAVIOR = "terminate"
#: The description of each rule on the task group (the VPC's default group), also printed by `make deploy`.
TASK_RULES = (
    ("ingress", "itself", "job containers of the cluster (rendezvous, NCCL/Neuron bootstrap)"),
    ("ingress", "nodes", "the cluster's nodes"),
    ("egress", "0.0.0.0/0", "S3, ECR and the AWS APIs (gateway endpoint and NAT gateway)"),
)
CUSTOM_RESOURCE_ID = "RestrictDefaultSecurityGroupCustomResource"


@dataclass(frozen=True)
class TaskNetwork:
    """What mlcdk did for the job containers' interfaces: the group they use (a token; None when unknown), whether
    mlcdk wrote its rules, and the free interface slots on network card 0 (None without EFA interfaces)."""

    group_id: str | None
    managed: bool
    card0_free_slots: int | None


def batch_node_template(launch_template: ec2.LaunchTemplate, *, spec: InstanceSpec, efa: bool,
                        security_group: ec2.ISecurityGroup) -> int | None:
    """Turn the shared launch template into a Batch node's: the EFA layout with a free card-0 slot, hop limit 1,
    and terminate on shutdown. Returns card 0's free slots (None without EFA)."""
    template = launch_template.node.default_child
    template.add_property_override("LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit", BATCH_HOP_LIMIT)
    template.add_property_override("LaunchTemplateData.InstanceInitiatedShutdownBehavior", SHUTDOWN_BEHAVIOR)
    if not efa:
        return None
    interfaces = efa_interfaces(spec, task_interface_slot=True)
    group_id = security_group.security_group_id
    template.add_property_override("LaunchTemplateData.NetworkInterfaces",
                                   [{**nic, "Groups": [group_id]} for nic in interfaces])
    return card0_free_slots(spec, interfaces)


def open_task_network(scope: Construct, *, vpc: ec2.IVpc, node_group: ec2.ISecurityGroup,
                      card0_slots: int | None) -> TaskNetwork:
    """The rules of the VPC's default group for the job containers (module docstring), or the warning that says
    which rules to add where mlcdk cannot reach that group."""
    if not isinstance(vpc, ec2.Vpc):
        warn(scope, "taskNetworkUnmanaged")
        return TaskNetwork(None, False, card0_slots)
    default_group = vpc.vpc_default_security_group
    node_group_id = node_group.security_group_id
    rules = [
        ec2.CfnSecurityGroupIngress(scope, "TaskGroupFromItself", group_id=default_group, ip_protocol="-1",
                                    source_security_group_id=default_group, description=f"Batch job containers: {TASK_RULES[0][2]}"),
        ec2.CfnSecurityGroupIngress(scope, "TaskGroupFromNodes", group_id=default_group, ip_protocol="-1",
                                    source_security_group_id=node_group_id, description=f"Batch job containers: {TASK_RULES[1][2]}"),
        ec2.CfnSecurityGroupEgress(scope, "TaskGroupToAnywhere", group_id=default_group, ip_protocol="-1",
                                   cidr_ip="0.0.0.0/0", description=f"Batch job containers: {TASK_RULES[2][2]}"),
        ec2.CfnSecurityGroupIngress(scope, "NodesFromTaskGroup", group_id=node_group_id, ip_protocol="-1",
                                    source_security_group_id=default_group, description="the cluster's job containers"),
        ec2.CfnSecurityGroupEgress(scope, "NodesToTaskGroup", group_id=node_group_id, ip_protocol="-1",
                                   destination_security_group_id=default_group, description="the cluster's job containers"),
    ]
    revoke = vpc.node.try_find_child(CUSTOM_RESOURCE_ID)
    for rule in rules:
        if revoke is not None:  # after CDK's custom resource has revoked AWS's default rules, never racing it
            rule.node.add_dependency(revoke)
        if isinstance(rule, ec2.CfnSecurityGroupIngress):
            acknowledge(rule, "NIST.800.53.R5-EC2RestrictedCommonPorts", "AWS Batch gives a multi-node job "
                        "container's awsvpc interface the VPC's default security group, since the compute environment "
                        "cannot name groups beside EFA interfaces (aws-cdk #21577); the job's containers and nodes "
                        "need all protocols and ports between them, and only members of the two groups are admitted")
    if not isinstance(vpc.node.scope, PrivateNetwork):
        warn(scope, "defaultSecurityGroupOpened")
    return TaskNetwork(default_group, True, card0_slots)
