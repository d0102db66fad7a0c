"""What a TrainingCluster's engine builds on: the resources of the network and security steps, in one frozen
dataclass, so that each engine takes the plan and these parts rather than a dozen loose values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns


@dataclass(frozen=True)
class ClusterInputs:
    """The constructor's cdk-valued arguments, which the plan (pure Python) does not hold: what the user brought
    (None where not: then a secure default is made), the removal policy, the checkpoint grace period and the
    user-data commands."""

    encryption_key: kms.IKey | None
    security_group: ec2.ISecurityGroup | None
    role: iam.IRole | None
    alarm_topic: sns.ITopic | None
    checkpoint_bucket: s3.IBucket | None
    machine_image: ec2.IMachineImage | None
    removal_policy: cdk.RemovalPolicy
    grace: cdk.Duration
    user_data_commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterParts:
    """The cluster's network, security and boot resources. ``label``: the construct's ID, for descriptions.
    ``grace``: the checkpoint grace period (a lifecycle hook's heartbeat on engine="nodes"). ``shared_mount_point``
    and ``shared_environment``: a shared file system's path on the hosts and the job's variables for it."""

    vpc: ec2.IVpc
    subnet: ec2.ISubnet
    security_group: ec2.ISecurityGroup
    role: iam.IRole
    key: kms.IKey
    machine_image: ec2.IMachineImage
    user_data: ec2.UserData
    checkpoint_bucket: s3.IBucket
    alarm_topic: sns.ITopic
    removal_policy: cdk.RemovalPolicy
    label: str
    grace: cdk.Duration
    shared_mount_point: str | None = None
    shared_environment: Mapping[str, str] | None = None
