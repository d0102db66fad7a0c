"""PrivateNetwork: a VPC whose private subnets sit in the AZs (by AZ ID) that offer an instance type."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.warning_registry import warn
from mlcdk.errors import ConfigurationError
from mlcdk.constructs.placement import network_az_ids  # noqa: F401 (public here since wave 2)
from mlcdk.params import checked


class PrivateNetwork(Construct):
    """A VPC for accelerated nodes: private subnets with NAT egress, an S3 gateway endpoint on the private
    subnets' route tables (``s3_endpoint``), encrypted VPC flow logs, and a default security group with no rules
    (a Batch TrainingCluster opens it to its job containers: mlcdk.constructs.batch_network).

    Nodes go in the private subnets and get no public IPs. Public subnets hold only the NAT gateways
    (and, for a public inference fleet, its load balancer).

    The VPC's default security group is emptied whatever the app's feature flags say
    (``restrict_default_security_group=True``): CloudFormation cannot change that group, so aws-cdk adds
    its ``Custom::VpcRestrictDefaultSG`` resource, a Lambda function whose role may only revoke and
    authorize rules of this VPC's default group (plus AWSLambdaBasicExecutionRole for its own logs).

    :param availability_zone_ids: AZ IDs (``use1-az4``) for the subnets, usually the catalog's
        offerings of the instance type. Default: the first two AZs that CDK picks for the stack, by name:
        in an env-agnostic stack, the first two that ``Fn::GetAZs`` returns in the region at deploy time;
        in a stack with an account and region, the first two of its AZ lookup (``cdk.context.json``).
        Nothing then guarantees that they offer the instance type, and synth says so in a warning
        (``mlcdk:unpinnedAvailabilityZones``).
    :param cidr: the VPC's IPv4 range. Default: 10.0.0.0/16.
    :param nat_gateways: NAT gateways for egress. Default: 1 (one AZ's NAT serves all; set it to the AZ
        count for AZ-independent egress).
    :param flow_log_retention: how long flow logs are kept. Default: one year.
    """

    @checked
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        availability_zone_ids: Sequence[str] | None = None,
        cidr: str = "10.0.0.0/16",
        nat_gateways: int = 1,
        flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
    ) -> None:
        super().__init__(scope, construct_id)
        ids = tuple(availability_zone_ids or ())
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"availability_zone_ids ({list(ids)}) must not repeat an AZ")
        if not 0 <= nat_gateways <= max(len(ids), 3):
            raise ConfigurationError(f"nat_gateways ({nat_gateways}) must be from 0 to the number of AZs")
        subnets = [
            ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24,
                                    map_public_ip_on_launch=False),
            ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19),
        ]
        common = dict(ip_addresses=ec2.IpAddresses.cidr(cidr), nat_gateways=nat_gateways, subnet_configuration=subnets,
                      restrict_default_security_group=True)  # explicit: not left to the app's feature flags
        stack_azs = cdk.Stack.of(self).availability_zones
        if ids and len(ids) > len(stack_azs):
            # Only when the account is unresolved (CDK offers two AZ tokens): the IDs stand in as names,
            # and every subnet is re-pinned by ID below.
            self.vpc = ec2.Vpc(self, "Vpc", availability_zones=list(ids), **common)
        else:
            self.vpc = ec2.Vpc(self, "Vpc", max_azs=len(ids) or 2, **common)
        self.availability_zone_ids = ids
        #: The VPC's range as a literal (``vpc.vpc_cidr_block`` is a token that rule checkers cannot read).
        self.cidr = cidr
        for subnet in self.vpc.public_subnets:
            acknowledge(subnet, "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW", "public subnets hold only the NAT "
                        "gateway (and a deliberately internet-facing load balancer), and a public NAT gateway must sit "
                        "in a subnet whose route table sends internet traffic to the internet gateway (Amazon VPC User "
                        "Guide, 'NAT gateways'); nodes live in private subnets with no route from the internet")
        if ids:
            self._pin_subnets_by_az_id(ids)
        else:
            self._warn_unpinned()
        self.s3_endpoint = self._s3_endpoint()
        self._flow_logs(flow_log_retention)

    def _flow_logs(self, retention: logs.RetentionDays) -> None:
        """Every packet's flow record, to a log group encrypted with a key of its own."""
        self.flow_log_key = kms.Key(self, "FlowLogKey", enable_key_rotation=True,
                                    description="Encrypts the VPC flow logs", removal_policy=cdk.RemovalPolicy.DESTROY)
        stack = cdk.Stack.of(self)
        self.flow_log_key.add_to_resource_policy(iam.PolicyStatement(
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}},
        ))
        self.flow_log_group = logs.LogGroup(self, "FlowLogs", encryption_key=self.flow_log_key,
                                            retention=retention, removal_policy=cdk.RemovalPolicy.DESTROY)
        flow_log = self.vpc.add_flow_log("FlowLog", traffic_type=ec2.FlowLogTrafficType.ALL,
                                         destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group))
        acknowledge(flow_log, "NIST.800.53.R5-IAMNoInlinePolicy", "CDK's flow-log delivery role carries one inline "
                    "policy scoped to this VPC's own log group; it is created and deleted with the VPC (an inline "
                    "policy keeps a strict one-to-one relationship with its role: IAM User Guide, 'Managed policies "
                    "and inline policies')")

    def _s3_endpoint(self) -> ec2.GatewayVpcEndpoint:
        """S3 without the NAT gateway: checkpoints, data, FSx's S3 links and image layers (ECR keeps them in S3) go
        through a gateway endpoint on the private subnets' route tables, as in AWS's reference VPC
        (awsome-distributed-training 1.architectures/1.vpc_network/2.vpc-one-az.yaml, S3Endpoint). A gateway endpoint
        has no hourly or data charge (VPC user guide, "Gateway endpoints"); NAT gateway data processing is charged."""
        return self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[
            ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)])

    @property
    def private_subnets(self) -> list[ec2.ISubnet]:
        return self.vpc.private_subnets

    def _warn_unpinned(self) -> None:
        """Say which AZs the subnets went to without AZ IDs, and that nothing checks the instance type there."""
        names = self.vpc.availability_zones
        if any(cdk.Token.is_unresolved(name) for name in names):
            where = (f"the first {len(names)} AZs that Fn::GetAZs returns in the deploy region (the stack is "
                     "env-agnostic, so CDK cannot name them)")
        else:
            where = f"{', '.join(names)} (by name; AZ names map to different AZ IDs in each account)"
        warn(self, "unpinnedAvailabilityZones", where=where)

    def _pin_subnets_by_az_id(self, ids: Sequence[str]) -> None:
        """Place subnet i of each tier in AZ ``ids[i]`` by AvailabilityZoneId (names differ per account)."""
        for tier in (self.vpc.public_subnets, self.vpc.private_subnets):
            for az_id, subnet in zip(ids, tier, strict=True):
                cfn = subnet.node.default_child
                cfn.add_property_deletion_override("AvailabilityZone")
                cfn.add_property_override("AvailabilityZoneId", az_id)
