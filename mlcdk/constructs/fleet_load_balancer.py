"""The InferenceFleet's load balancer: listener, target group, access logs, web ACL, the DNS-name output, and
the cdk-nag acknowledgements that are true for the configuration.

Everything is built as a child of the fleet (an InferenceFleet, typed here as the Construct it is: this module sits
below inference_fleet, which imports it), with the fleet's fixed IDs ("LoadBalancer", "Targets",
"Listener", "LoadBalancerSecurityGroup", ...), so the split into small functions changes no logical ID.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from mlcdk.constructs import security
from mlcdk.constructs.fleet_checks import (  # noqa: F401 (the ARN patterns and SENSITIVE_PORTS are read here too)
    CERTIFICATE_ARN, SENSITIVE_PORTS, WEB_ACL_ARN, arn_region,
)
from mlcdk.constructs.fleet_options import LoadBalancerOptions
from mlcdk.constructs.nag import acknowledge
from mlcdk.constructs.network import PrivateNetwork
from mlcdk.constructs.validation import concrete
from mlcdk.constructs.warning_registry import warn

#: Rules that cannot evaluate a security-group source range given as a token.
CIDR_RULES = ("AwsSolutions-EC23", "NIST.800.53.R5-EC2RestrictedSSH", "NIST.800.53.R5-EC2RestrictedCommonPorts")

def resolve_certificate(fleet: Construct, certificate: acm.ICertificate | str | None) -> acm.ICertificate | None:
    """The certificate, imported ("Certificate") when given as an ARN."""
    if isinstance(certificate, str):
        return acm.Certificate.from_certificate_arn(fleet, "Certificate", certificate)
    return certificate


@dataclass(frozen=True)
class _Listening:
    """Who reaches the listener, and how."""

    public: bool
    port: int  # 443 with a certificate, else 80
    certificate: acm.ICertificate | None
    subnets: ec2.SubnetSelection
    vpc_cidr: str  # a literal where mlcdk built the VPC (rule checkers can read it), else the VPC's token
    source: ec2.IPeer  # the internet (public) or the VPC's range (internal)


def _listening(vpc: ec2.IVpc, options: LoadBalancerOptions, certificate: acm.ICertificate | None) -> _Listening:
    public = options.internet_facing
    network = vpc.node.scope
    vpc_cidr = network.cidr if isinstance(network, PrivateNetwork) and network.vpc is vpc else vpc.vpc_cidr_block
    return _Listening(
        public=public, port=443 if certificate else 80, certificate=certificate,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_WITH_EGRESS),
        vpc_cidr=vpc_cidr, source=ec2.Peer.any_ipv4() if public else ec2.Peer.ipv4(vpc_cidr))


_UNREADABLE = ("internal clients from the VPC's own range, which is a token here (an imported VPC) that the rule "
               "cannot evaluate; the range is never 0.0.0.0/0")


def build(fleet: Construct, vpc: ec2.IVpc, options: LoadBalancerOptions, certificate: acm.ICertificate | None,
          removal_policy: cdk.RemovalPolicy) -> None:
    """The load balancer, its listener and target group (``fleet.load_balancer``, ``.listener``,
    ``.target_group``) on the fleet's ``port`` and ``health_check_path``, the access-log bucket and the DNS-name
    output, all under ``fleet``. With engine="nodes" the Auto Scaling group registers its instances; with
    engine="ecs" the ECS service registers its tasks."""
    port, health_check_path, attach_group = fleet.port, fleet.health_check_path, fleet.engine == "nodes"
    listening = _listening(vpc, options, certificate)
    fleet.access_logs = security.access_log_bucket(fleet, "AccessLogs", of="the load balancer",
                                                   retention=cdk.Duration.days(90), removal_policy=removal_policy)
    _warn_public(fleet, options, listening)
    _warn_regional_arns(fleet, options)
    if options.kind == "application":
        _application(fleet, vpc, options, listening, port, health_check_path)
    else:
        _network(fleet, vpc, listening, port, health_check_path)
    if attach_group and options.kind == "application":
        fleet.auto_scaling_group.attach_to_application_target_group(fleet.target_group)
    elif attach_group:
        fleet.auto_scaling_group.attach_to_network_target_group(fleet.target_group)
    _acknowledge_plain_listener(fleet, options, listening)
    _deletion_protection(fleet, options)
    _access_logging(fleet)
    cdk.CfnOutput(fleet, "LoadBalancerDnsName", value=fleet.load_balancer.load_balancer_dns_name,
                  description=f"{fleet.node.id}: the load balancer's DNS name ({'internet-facing' if listening.public else 'internal'}"
                              f", {'TLS' if certificate else 'plain'} on {listening.port})")


def _warn_public(fleet: Construct, options: LoadBalancerOptions, listening: _Listening) -> None:
    if not listening.public:
        return
    if listening.certificate is None:
        warn(fleet, "publicWithoutTls", port=listening.port)
    if options.web_acl_arn is None:
        warn(fleet, "publicWithoutWaf", remedy=(
            "pass LoadBalancerOptions.web_acl_arn (a regional AWS WAF web ACL)" if options.kind == "application"
            else "AWS WAF cannot attach to a network load balancer: use kind='application' with web_acl_arn, or "
                 "filter in front of the fleet"))


def _warn_regional_arns(fleet: Construct, options: LoadBalancerOptions) -> None:
    """An env-agnostic stack cannot compare the web ACL's or certificate's region with its own (a regional
    stack refuses a mismatch at construction): say where the stack can deploy."""
    if concrete(cdk.Stack.of(fleet).region):
        return
    arns = {"web ACL": arn_region(WEB_ACL_ARN, options.web_acl_arn),
            "certificate": arn_region(CERTIFICATE_ARN, options.certificate)}
    for what, region in arns.items():
        if region is not None:
            warn(fleet, "regionalArnInEnvAgnosticStack", what=what, region=region)


def _application(fleet: Construct, vpc: ec2.IVpc, options: LoadBalancerOptions, listening: _Listening,
                 port: int, path: str) -> None:
    group = ec2.SecurityGroup(fleet, "LoadBalancerSecurityGroup", vpc=vpc, allow_all_outbound=False,
                              description="Model-serving load balancer: listener in, model servers out")
    group.add_ingress_rule(listening.source, ec2.Port.tcp(listening.port), "listener")
    if listening.public:
        acknowledge(group, "AwsSolutions-EC23", "deliberately internet-facing listener of a public model-serving fleet")
    elif cdk.Token.is_unresolved(listening.vpc_cidr):
        acknowledge(group, CIDR_RULES, _UNREADABLE)
    fleet.load_balancer_security_group = group
    fleet.load_balancer = elbv2.ApplicationLoadBalancer(
        fleet, "LoadBalancer", vpc=vpc, internet_facing=listening.public, vpc_subnets=listening.subnets,
        security_group=group, drop_invalid_header_fields=True)
    fleet.target_group = elbv2.ApplicationTargetGroup(
        fleet, "Targets", vpc=vpc, port=port, protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.INSTANCE, deregistration_delay=cdk.Duration.seconds(60),
        health_check=elbv2.HealthCheck(path=path, interval=cdk.Duration.seconds(15), timeout=cdk.Duration.seconds(10),
                                       healthy_threshold_count=2, unhealthy_threshold_count=3))
    tls = listening.certificate is not None
    fleet.listener = fleet.load_balancer.add_listener(
        "Listener", port=listening.port, open=False,
        protocol=elbv2.ApplicationProtocol.HTTPS if tls else elbv2.ApplicationProtocol.HTTP,
        certificates=[listening.certificate] if tls else None, ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if tls else None,
        default_target_groups=[fleet.target_group])
    if options.web_acl_arn:
        wafv2.CfnWebACLAssociation(fleet, "WebAcl", resource_arn=fleet.load_balancer.load_balancer_arn,
                                   web_acl_arn=options.web_acl_arn)
    elif not listening.public:
        acknowledge(fleet.load_balancer, "NIST.800.53.R5-ALBWAFEnabled",
                    "internal load balancer, reachable only from inside the VPC; pass LoadBalancerOptions.web_acl_arn "
                    "to attach a web ACL anyway")
    # A public ALB without a web ACL is NOT acknowledged: cdk-nag reports NIST.800.53.R5-ALBWAFEnabled, and the
    # app's owner acknowledges it with their own reason (e.g. a WAF in front of the fleet) or attaches an ACL.
    fleet.security_group.connections.allow_from(group, ec2.Port.tcp(port), "model server port, from the load balancer only")


def _network(fleet: Construct, vpc: ec2.IVpc, listening: _Listening, port: int, path: str) -> None:
    fleet.load_balancer_security_group = None
    fleet.load_balancer = elbv2.NetworkLoadBalancer(fleet, "LoadBalancer", vpc=vpc, internet_facing=listening.public,
                                                    vpc_subnets=listening.subnets, cross_zone_enabled=True)
    fleet.target_group = elbv2.NetworkTargetGroup(
        fleet, "Targets", vpc=vpc, port=port, protocol=elbv2.Protocol.TCP, target_type=elbv2.TargetType.INSTANCE,
        deregistration_delay=cdk.Duration.seconds(60),
        health_check=elbv2.HealthCheck(protocol=elbv2.Protocol.HTTP, path=path, interval=cdk.Duration.seconds(15),
                                       healthy_threshold_count=2, unhealthy_threshold_count=3))
    tls = listening.certificate is not None
    fleet.listener = fleet.load_balancer.add_listener(
        "Listener", port=listening.port, protocol=elbv2.Protocol.TLS if tls else elbv2.Protocol.TCP,
        certificates=[elbv2.ListenerCertificate.from_certificate_manager(listening.certificate)] if tls else None,
        default_target_groups=[fleet.target_group])
    _network_ingress(fleet, listening, port)


def _network_ingress(fleet: Construct, listening: _Listening, port: int) -> None:
    """NLB targets see client addresses: the nodes admit the VPC (internal) or anyone (public) on the serving
    port. A public port is never one of SENSITIVE_PORTS (refused at construction)."""
    if not (listening.public or cdk.Token.is_unresolved(listening.vpc_cidr)):
        fleet.security_group.add_ingress_rule(listening.source, ec2.Port.tcp(port), "model server port, through the NLB")
        return
    # A rule of its own, so that the acknowledgement covers this rule and nothing else on the group (which may be
    # the caller's).
    ingress = ec2.CfnSecurityGroupIngress(
        fleet, "ServingPortIngress", group_id=fleet.security_group.security_group_id, ip_protocol="tcp",
        cidr_ip="0.0.0.0/0" if listening.public else listening.vpc_cidr, from_port=port, to_port=port,
        description="model server port, through the NLB")
    if listening.public:
        acknowledge(ingress, "AwsSolutions-EC23", "a public NLB passes client addresses through; the serving port "
                    "(never an administration port, refused at synth) must accept them")
    else:
        acknowledge(ingress, CIDR_RULES, _UNREADABLE)


def _acknowledge_plain_listener(fleet: Construct, options: LoadBalancerOptions, listening: _Listening) -> None:
    if listening.certificate is not None:
        return
    rules = ("NIST.800.53.R5-ELBv2ACMCertificateRequired",)
    if options.kind == "application":
        rules += ("NIST.800.53.R5-ALBHttpToHttpsRedirection",)
    acknowledge(fleet.listener, rules,
                "plain HTTP/TCP chosen explicitly with allow_public_without_tls (warned at synth)" if listening.public
                else "internal listener without a certificate: traffic stays inside the VPC; pass "
                     "LoadBalancerOptions.certificate for HTTPS/TLS")


def _deletion_protection(fleet: Construct, options: LoadBalancerOptions) -> None:
    if options.deletion_protection:
        fleet.load_balancer.set_attribute("deletion_protection.enabled", "true")
        return
    acknowledge(fleet.load_balancer, "NIST.800.53.R5-ELBDeletionProtectionEnabled", "the load balancer holds no data "
                "and a deploy recreates it, while deletion protection would make `cdk destroy` fail; set "
                "LoadBalancerOptions(deletion_protection=True) to guard it")


def _access_logging(fleet: Construct) -> None:
    if concrete(cdk.Stack.of(fleet).region):
        fleet.load_balancer.log_access_logs(fleet.access_logs, prefix="load-balancer")
        return
    warn(fleet, "noAccessLogs")
    acknowledge(fleet.load_balancer, ("AwsSolutions-ELB2", "NIST.800.53.R5-ELBLoggingEnabled"),
                "env-agnostic stack: CDK can enable ELB access logs only for a concrete region; regional stacks log "
                "to the AccessLogs bucket")
