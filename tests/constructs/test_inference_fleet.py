"""InferenceFleet engine="nodes": load balancer, target group, scaling, purchase mix, alarms, and every construction
error. The ECS engine (the default) is tested in test_inference_ecs.py and test_model_options.py."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from mlcdk import ConfigurationError, FleetAlarmOptions, LoadBalancerOptions, PurchaseOptions, ScalingOptions
from mlcdk import InferenceFleet as _InferenceFleet
from mlcdk.presets import catalog
from tests.harness import cli_context, lint, nag_problems, synth

class InferenceFleet(_InferenceFleet):
    """The fleet on engine="nodes" unless a test says otherwise: this module tests the group engine."""

    def __init__(self, scope, construct_id, **kwargs):
        kwargs.setdefault("engine", "nodes")
        super().__init__(scope, construct_id, **kwargs)


SERVER = "/opt/server/bin/serve --port 8080"

WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"

#: stack -> (region, InferenceFleet keyword arguments)
FLEETS = {
    "Inf2Small": ("us-east-1", dict(preset="llm-serving-inferentia2")),
    "Inf2Large": ("us-west-2", dict(instance_type="inf2.48xlarge", min_capacity=1, max_capacity=2,
                                    scaling=ScalingOptions(signal="accelerator", target=65))),
    "G5": ("eu-west-2", dict(instance_type="g5.xlarge", min_capacity=2, max_capacity=6,
                             purchase=PurchaseOptions(option="mixed", on_demand_base_capacity=2,
                                                      fallback_instance_types=("g6.xlarge",)))),
    "G6": ("us-east-1", dict(preset="serving-nvidia", scaling=ScalingOptions(warmup=cdk.Duration.minutes(20)),
                             model_server_command=SERVER)),
    "C7g": ("us-west-2", dict(preset="cpu-inference", scaling=ScalingOptions(signal="cpu"))),
    "Nlb": ("us-east-1", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(kind="network"),
                              scaling=ScalingOptions(signal="cpu"), port=50051)),
}


@pytest.fixture(scope="module")
def result():
    def build(app):
        stacks = []
        for name, (region, kwargs) in FLEETS.items():
            stack = cdk.Stack(app, name, env=cdk.Environment(region=region))
            InferenceFleet(stack, "Fleet", **kwargs)
            stacks.append(stack)
        return stacks
    return synth(build, cli_context())


def props(template: dict, kind: str) -> list[dict]:
    return [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == kind]


def asg_of(template: dict) -> dict:
    (asg,) = props(template, "AWS::AutoScaling::AutoScalingGroup")
    return asg


@pytest.mark.parametrize("name", ["Inf2Small", "Inf2Large", "G5", "G6", "C7g"])
def test_internal_alb_forwards_to_a_health_checked_target_group_on_the_serving_port(result, name):
    template = Template.from_json(result.templates[name])
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
        "Scheme": "internal", "Type": "application",
        "LoadBalancerAttributes": Match.array_with([{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                                                    {"Key": "access_logs.s3.enabled", "Value": "true"}])})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup", {
        "Port": 8080, "Protocol": "HTTP", "HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 15,
        "TargetGroupAttributes": Match.array_with([{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {"Port": 80, "Protocol": "HTTP"})
    assert asg_of(result.templates[name])["TargetGroupARNs"]


@pytest.mark.parametrize("name", ["Inf2Small", "Inf2Large", "G5", "G6", "C7g"])
def test_nodes_accept_only_the_load_balancer_on_the_serving_port_across_offered_azs(result, name):
    template = result.templates[name]
    (ingress,) = props(template, "AWS::EC2::SecurityGroupIngress")
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (8080, 8080, "tcp")
    assert "LoadBalancerSecurityGroup" in ingress["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    region, kwargs = FLEETS[name]
    instance_type = kwargs.get("instance_type") or catalog.get({"Inf2Small": "inf2.xlarge", "G6": "g6.xlarge",
                                                                 "C7g": "c7g.xlarge"}[name]).instance_type
    subnets = [template["Resources"][s["Ref"]]["Properties"]["AvailabilityZoneId"] for s in asg_of(template)["VPCZoneIdentifier"]]
    assert len(subnets) >= 2 and set(subnets) <= set(catalog.get(instance_type).offered_azs(region))


def test_request_count_scaling_by_default_and_accelerator_or_cpu_on_request(result):
    requests = props(result.templates["Inf2Small"], "AWS::AutoScaling::ScalingPolicy")
    assert requests[0]["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    assert requests[0]["TargetTrackingConfiguration"]["TargetValue"] == 60
    (accelerator,) = props(result.templates["Inf2Large"], "AWS::AutoScaling::ScalingPolicy")
    custom = accelerator["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]
    assert (custom["MetricName"], custom["Namespace"], accelerator["TargetTrackingConfiguration"]["TargetValue"]) == (
        "neuroncore_utilization", "CWAgent", 65)
    (cpu,) = props(result.templates["C7g"], "AWS::AutoScaling::ScalingPolicy")
    assert cpu["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ASGAverageCPUUtilization"


def test_rolling_updates_keep_min_capacity_and_elb_health_checks_wait_for_the_model_to_load(result):
    template = result.templates["G6"]
    (asg,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    rolling = asg["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert (rolling["MinInstancesInService"], rolling["MaxBatchSize"]) == (1, 1)
    assert (asg["Properties"]["HealthCheckType"], asg["Properties"]["HealthCheckGracePeriod"]) == ("ELB", 1200)
    assert asg["Properties"]["DefaultInstanceWarmup"] == 1200


def test_preset_mix_keeps_an_on_demand_base_and_same_family_fallbacks(result):
    policy = asg_of(result.templates["Inf2Small"])["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["OnDemandBaseCapacity"] == 1
    assert policy["InstancesDistribution"]["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["inf2.xlarge", "inf2.8xlarge"]
    g5 = asg_of(result.templates["G5"])["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
    assert [o["InstanceType"] for o in g5] == ["g5.xlarge", "g6.xlarge"]
    assert asg_of(result.templates["G5"])["CapacityRebalance"] is True


def test_fleet_alarms_latency_errors_unhealthy_and_pinned_at_max(result):
    descriptions = " | ".join(p["AlarmDescription"] for p in props(result.templates["G6"], "AWS::CloudWatch::Alarm"))
    for expected in ("p99 response time above 10 s", "5xx responses above 5%", "unhealthy model servers",
                     "pinned at max_capacity (4)", "accelerator utilization below 5% for 6 h"):
        assert expected in descriptions, expected
    (latency,) = [p for p in props(result.templates["G6"], "AWS::CloudWatch::Alarm") if "p99" in p["AlarmDescription"]]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("TargetResponseTime", "p99")
    (topic,) = [k for k, r in result.templates["G6"]["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    assert all({"Ref": topic} in p["AlarmActions"] for p in props(result.templates["G6"], "AWS::CloudWatch::Alarm"))


def test_network_load_balancer_for_grpc_or_tcp(result):
    template = Template.from_json(result.templates["Nlb"])
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Type": "network", "Scheme": "internal"})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup", {"Port": 50051, "Protocol": "TCP"})
    descriptions = " ".join(p["AlarmDescription"] for p in props(result.templates["Nlb"], "AWS::CloudWatch::Alarm"))
    assert "unhealthy model servers" in descriptions and "p99" not in descriptions


def test_launch_template_security_defaults(result):
    for name in FLEETS:
        (lt,) = props(result.templates[name], "AWS::EC2::LaunchTemplate")
        data = lt["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert all(m["Ebs"]["Encrypted"] and "KmsKeyId" in m["Ebs"] for m in data["BlockDeviceMappings"])
        assert "NetworkInterfaces" not in data


@pytest.mark.parametrize(("name", "parameter"), [
    ("Inf2Small", "/aws/service/neuron/dlami/"), ("G6", "/aws/service/deeplearning/ami/x86_64/"),
    ("C7g", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"),
])
def test_ami_per_accelerator_from_the_catalog(result, name, parameter):
    assert any(parameter in str(p.get("Default")) for p in result.templates[name]["Parameters"].values())


def test_fleets_pass_cdk_nag_and_cfn_lint_in_their_regions(result):
    assert nag_problems(result) == []
    for name, (region, _) in FLEETS.items():
        assert lint(result.template_paths[name], [region]) == [], name


def one(region="us-east-1", **kwargs):
    def build(app):
        stack = cdk.Stack(app, "One", env=cdk.Environment(region=region))
        build.fleet = InferenceFleet(stack, "Fleet", **kwargs)
        if "grant" in build.__dict__:
            build.grant(stack, build.fleet)
        return [stack]
    return build


def test_public_fleet_with_a_certificate_serves_https_and_model_bucket_read_is_granted():
    def build(app):
        stack = cdk.Stack(app, "Pub", env=cdk.Environment(region="us-east-1"))
        cert = acm.Certificate.from_certificate_arn(stack, "Cert", "arn:aws:acm:us-east-1:123456789012:certificate/abc")
        models = s3.Bucket(stack, "Models", enforce_ssl=True, server_access_logs_prefix="self/")
        fleet = InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", model_bucket=models,
                               load_balancer=LoadBalancerOptions(internet_facing=True, certificate=cert),
                               model_server_command="vllm serve /models/llama --port 8080")
        fleet.grant_model_read(s3.Bucket.from_bucket_name(stack, "More", "more-models"))
        return [stack]
    result = synth(build, cli_context(), nag=False)
    template = Template.from_json(result.templates["Pub"])
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"})
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {"Port": 443, "Protocol": "HTTPS"})
    template.has_resource_properties("AWS::EC2::SecurityGroup", {"SecurityGroupIngress": [
        Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443})]})
    template.resource_properties_count_is("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "s3:GetObject"})])}}, 2)
    (lt,) = props(result.templates["Pub"], "AWS::EC2::LaunchTemplate")
    assert "mlcdk-model-server.service" in str(lt["LaunchTemplateData"]["UserData"])


def open_fleet(app, name="Open", **kwargs):
    """A public ALB without TLS and without a web ACL (both on request)."""
    stack = cdk.Stack(app, name, env=cdk.Environment(region="us-east-1"))
    return InferenceFleet(stack, "Fleet", instance_type="g6.xlarge",
                          load_balancer=LoadBalancerOptions(internet_facing=True, allow_public_without_tls=True), **kwargs)


def test_public_http_is_allowed_only_on_request_and_warns():
    result = synth(lambda app: [cdk.Stack.of(open_fleet(app))], cli_context(), nag=False)
    warnings = Annotations.from_stack(result.stacks["Open"]).find_warning("*", Match.string_like_regexp(".*without a certificate.*"))
    assert warnings
    (listener,) = props(result.templates["Open"], "AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")


def test_a_public_fleet_without_a_web_acl_warns_and_leaves_the_nist_waf_finding_to_the_app():
    """Nothing filters a public fleet's requests: mlcdk warns, and does not acknowledge NIST ALBWAFEnabled for
    the app (the reason would be false); the app's owner acknowledges it with their own reason, or adds an ACL."""
    from mlcdk.constructs.nag import acknowledge

    result = synth(lambda app: [cdk.Stack.of(open_fleet(app))], cli_context(), nag=False)
    (warning,) = Annotations.from_stack(result.stacks["Open"]).find_warning(
        "/Open/Fleet", Match.string_like_regexp(".*internet-facing without a web ACL.*"))
    assert "[ack: mlcdk:publicWithoutWaf]" in warning.entry.data
    assert "NIST.800.53.R5-ALBWAFEnabled" not in acknowledged(result, "Open/Fleet/LoadBalancer")
    # With the packs attached, synth fails on that one finding (NIST's, and PCI DSS 3.2.1's same rule), and on
    # nothing else.
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        synth(lambda app: [cdk.Stack.of(open_fleet(app))], cli_context())
    report = str(failed.value)
    assert report.count("ERROR ") == 2 and report.count("The ALB is not associated with AWS WAFv2 web ACL") == 2
    assert report.count("Open/Fleet/LoadBalancer/Resource") == 2
    assert "NIST.800.53.R5::NIST.800.53.R5-ALBWAFEnabled" in report and "PCI.DSS.321::PCI.DSS.321-ALBWAFEnabled" in report

    def owner_acknowledges(app):
        fleet = open_fleet(app, "Owned")
        acknowledge(fleet.load_balancer, "NIST.800.53.R5-ALBWAFEnabled", "requests are filtered by the WAF of the "
                    "CloudFront distribution in front of this fleet")
        return [cdk.Stack.of(fleet)]
    assert nag_problems(synth(owner_acknowledges, cli_context())) == []


def test_internal_and_web_acl_fleets_do_not_warn_about_waf(result):
    for name in FLEETS:
        assert not Annotations.from_stack(result.stacks[name]).find_warning(
            "*", Match.string_like_regexp(".*without a web ACL.*")), name
    # The internal ALB's acknowledgement is true: only the VPC reaches it.
    assert "NIST.800.53.R5-ALBWAFEnabled" in acknowledged(result, "Inf2Small/Fleet/LoadBalancer")


def acknowledged(result, path: str) -> set[str]:
    """The cdk-nag rule ids acknowledged on the construct at ``path`` itself."""
    (construct,) = [c for c in result.app.node.find_all() if c.node.path == path]
    return {rule.split("::")[-1] for entry in construct.node.metadata
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY for rule in dict(entry.data)}


def test_internal_albs_admit_the_vpc_range_as_a_literal_so_the_port_rules_need_no_acknowledgement(result):
    """The internal ALB's ingress is the VPC's range as written (10.0.0.0/16), not a token, so cdk-nag's
    port rules (EC23, EC2RestrictedSSH, EC2RestrictedCommonPorts) evaluate it and pass."""
    (group,) = [g for g in props(result.templates["Inf2Small"], "AWS::EC2::SecurityGroup")
                if g["GroupDescription"].startswith("Model-serving load balancer")]
    assert group["SecurityGroupIngress"] == [{"CidrIp": "10.0.0.0/16", "Description": "listener", "FromPort": 80,
                                              "IpProtocol": "tcp", "ToPort": 80}]
    assert acknowledged(result, "Inf2Small/Fleet/LoadBalancerSecurityGroup") == set()
    assert nag_problems(result) == []


def test_deletion_protection_is_off_by_default_acknowledged_and_on_when_asked(result):
    for name in FLEETS:
        (balancer,) = props(result.templates[name], "AWS::ElasticLoadBalancingV2::LoadBalancer")
        assert {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}["deletion_protection.enabled"] == "false"
        assert "NIST.800.53.R5-ELBDeletionProtectionEnabled" in acknowledged(result, f"{name}/Fleet/LoadBalancer")

    def build(app):
        stack = cdk.Stack(app, "Guarded", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(deletion_protection=True))
        return [stack]
    guarded = synth(build, cli_context())
    assert nag_problems(guarded) == []
    (balancer,) = props(guarded.templates["Guarded"], "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}["deletion_protection.enabled"] == "true"
    assert "NIST.800.53.R5-ELBDeletionProtectionEnabled" not in acknowledged(guarded, "Guarded/Fleet/LoadBalancer")


def test_nodes_get_no_permission_on_the_fleet_key(result):
    """EBS encryption goes through EC2 (the key policy's kms:ViaService grant); the role needs no KMS."""
    for name in FLEETS:
        actions = [a for policy in props(result.templates[name], "AWS::IAM::Policy")
                   for statement in policy["PolicyDocument"]["Statement"]
                   for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])]
        assert actions and not [a for a in actions if a.startswith("kms:")], (name, actions)


def test_web_acl_association_on_a_public_https_fleet():
    def build(app):
        stack = cdk.Stack(app, "Waf", env=cdk.Environment(region="us-east-1"))
        cert = acm.Certificate.from_certificate_arn(stack, "Cert", "arn:aws:acm:us-east-1:123456789012:certificate/abc")
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge",
                       load_balancer=LoadBalancerOptions(internet_facing=True, certificate=cert, web_acl_arn=WEB_ACL))
        return [stack]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    template = Template.from_json(result.templates["Waf"])
    template.has_resource_properties("AWS::WAFv2::WebACLAssociation", {
        "WebACLArn": WEB_ACL, "ResourceArn": {"Ref": Match.string_like_regexp("FleetLoadBalancer.*")}})
    assert "NIST.800.53.R5-ALBWAFEnabled" not in acknowledged(result, "Waf/Fleet/LoadBalancer")
    assert not Annotations.from_stack(result.stacks["Waf"]).find_warning("*", Match.string_like_regexp(".*web ACL.*"))
    assert lint(result.template_paths["Waf"], ["us-east-1"]) == []


@pytest.mark.parametrize("kind", ["application", "network"])
def test_an_imported_vpc_range_stays_a_token_and_only_its_own_rule_is_acknowledged(kind):
    def build(app):
        stack = cdk.Stack(app, "Imported", env=cdk.Environment(region="us-east-1", account="123456789012"))
        vpc = ec2.Vpc.from_vpc_attributes(
            stack, "Vpc", vpc_id="vpc-0123456789abcdef0", vpc_cidr_block=cdk.Fn.import_value("SharedVpcCidr"),
            availability_zones=["us-east-1a", "us-east-1b"],
            private_subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", vpc=vpc, port=50051,
                       load_balancer=LoadBalancerOptions(kind=kind), scaling=ScalingOptions(signal="cpu"))
        return [stack]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    template = result.templates["Imported"]
    cidr_rules = {"AwsSolutions-EC23", *(f"{pack}-{rule}" for pack in ("NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321")
                                         for rule in ("EC2RestrictedSSH", "EC2RestrictedCommonPorts"))}
    if kind == "application":
        (group,) = [g for g in props(template, "AWS::EC2::SecurityGroup")
                    if g["GroupDescription"].startswith("Model-serving load balancer")]
        assert group["SecurityGroupIngress"][0]["CidrIp"] == {"Fn::ImportValue": "SharedVpcCidr"}
        assert acknowledged(result, "Imported/Fleet/LoadBalancerSecurityGroup") == cidr_rules
    else:  # the nodes' own group, which a caller may share: the rule is a resource of its own
        (ingress,) = [r for r in props(template, "AWS::EC2::SecurityGroupIngress") if r.get("FromPort") == 50051]
        assert ingress["CidrIp"] == {"Fn::ImportValue": "SharedVpcCidr"}
        assert acknowledged(result, "Imported/Fleet/ServingPortIngress") == cidr_rules
        assert not acknowledged(result, "Imported/Fleet/SecurityGroup") & cidr_rules


def test_training_type_for_serving_warns_but_synthesizes():
    def build(app):
        stack = cdk.Stack(app, "Big", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="p5.48xlarge", max_capacity=2)
        return [stack]
    result = synth(build, cli_context())
    warnings = Annotations.from_stack(result.stacks["Big"]).find_warning("*", Match.string_like_regexp(".*multi-node training.*"))
    assert warnings


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, r"InferenceFleet needs instance_type or preset"),
    ({"instance_type": "inf2.xlarg"}, r"unknown instance type 'inf2.xlarg'; did you mean 'inf2.xlarge'"),
    ({"preset": "llm-pretrain-trainium"}, r"preset \('llm-pretrain-trainium'\) is a training preset"),
    ({"instance_type": "inf2.xlarge", "region": "af-south-1"}, r"inf2.xlarge is not offered in af-south-1; it is offered in"),
    ({"instance_type": "trn1n.32xlarge"}, r"trn1n.32xlarge is offered in only one AZ of us-east-1 \(use1-az6\)"),
    ({"instance_type": "g6.xlarge", "min_capacity": 5, "max_capacity": 2}, r"min_capacity \(5\) must not exceed max_capacity \(2\)"),
    ({"instance_type": "g6.xlarge", "min_capacity": -1}, r"min_capacity \(-1\) must be a whole number from 0 to 1000"),
    ({"instance_type": "g6.xlarge", "max_capacity": 0}, r"max_capacity \(0\) must be a whole number from 1 to 1000"),
    ({"instance_type": "g6.xlarge", "port": 70000}, r"port \(70000\) must be a whole number from 1 to 65535"),
    ({"instance_type": "g6.xlarge", "port": 0}, r"port \(0\) must be a whole number from 1 to 65535"),
    ({"instance_type": "g6.xlarge", "health_check_path": "health"}, r"health_check_path \('health'\) must start with '/'"),
    ({"instance_type": "g6.xlarge", "load_balancer": LoadBalancerOptions(internet_facing=True)},
     r"an internet-facing fleet needs a certificate"),
    ({"instance_type": "g6.xlarge", "load_balancer": LoadBalancerOptions(kind="classic")},
     r"load_balancer.kind \('classic'\) must be application or network"),
    ({"instance_type": "g6.xlarge", "load_balancer": LoadBalancerOptions(kind="network")},
     r"scaling.signal \('requests'\) needs an application load balancer"),
    ({"instance_type": "c7g.xlarge", "scaling": ScalingOptions(signal="accelerator")},
     r"publishes no accelerator metrics for c7g.xlarge; use 'cpu'"),
    ({"instance_type": "g6.xlarge", "scaling": ScalingOptions(signal="gpu")}, r"scaling.signal \('gpu'\) must be one of"),
    ({"instance_type": "g6.xlarge", "scaling": ScalingOptions(target=0)}, r"scaling.target \(0\) must be a number above 0"),
    ({"preset": "serving-nvidia", "scaling": ScalingOptions(warm_pool=True)},
     r"scaling.warm_pool cannot be used with purchase option 'mixed'"),
    ({"instance_type": "g6.xlarge", "purchase": PurchaseOptions(fallback_instance_types=("inf2.xlarge",))},
     r"inf2.xlarge cannot replace g6.xlarge: its accelerator is AWS Inferentia2, not NVIDIA"),
    ({"instance_type": "g6.xlarge", "scaling": ScalingOptions(signal="cpu"), "load_balancer": LoadBalancerOptions(
        kind="network", web_acl_arn=WEB_ACL)}, r"load_balancer.web_acl_arn: AWS WAF protects application load balancers only"),
    ({"instance_type": "g6.xlarge", "load_balancer": LoadBalancerOptions(web_acl_arn=WEB_ACL.replace("regional", "global"))},
     r"load_balancer.web_acl_arn \('arn:aws:wafv2:us-east-1:123456789012:global/webacl/api/.*'\) must be a regional WAFv2 web ACL ARN"),
    ({"instance_type": "g6.xlarge", "load_balancer": LoadBalancerOptions(deletion_protection=1)},
     r"load_balancer.deletion_protection \(1\) must be True or False"),
    ({"instance_type": "g6e.xlarge", "purchase": PurchaseOptions(fallback_instance_types=("g6.xlarge",))},
     r"g6.xlarge cannot replace g6e.xlarge: it has 22.3516 GiB of accelerator memory, less than 44.7031 GiB"),
])
def test_bad_configuration_fails_at_construction(kwargs, message):
    kwargs = dict(kwargs)
    region = kwargs.pop("region", "us-east-1")
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region=region))
    with pytest.raises(ConfigurationError, match=message):
        InferenceFleet(stack, "Fleet", **kwargs)


def test_a_fixed_size_fleet_gets_no_scaling_policy_and_still_lints():
    def build(app):
        stack = cdk.Stack(app, "Fixed", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", min_capacity=2, max_capacity=2)
        return [stack]
    result = synth(build, cli_context())
    assert props(result.templates["Fixed"], "AWS::AutoScaling::ScalingPolicy") == []
    assert lint(result.template_paths["Fixed"], ["us-east-1"]) == []


# ------------------------------------------------------------------------------------------------
# Issue 14: deploy-time limits refused at synth, CDK idioms, and the behaviours a one-line change could break.
# ------------------------------------------------------------------------------------------------

WEB_ACL_EU = WEB_ACL.replace("us-east-1", "eu-west-1")
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
PUBLIC_HTTP = dict(internet_facing=True, allow_public_without_tls=True)
NLB_CPU = dict(instance_type="g6.xlarge", scaling=ScalingOptions(signal="cpu"))

#: (id, InferenceFleet keyword arguments, expected message) for every refusal added by issue 14.
FLEET_BAD_INPUT = [
    # A warm pool on what would be a mixed-instances group.
    ("warm-pool-preset-fallbacks", dict(preset="serving-nvidia", purchase=PurchaseOptions(),
                                        scaling=ScalingOptions(warm_pool=True)),
     r"scaling.warm_pool cannot be used with fallback instance types \(g6.2xlarge, g5.xlarge, g5.2xlarge, the preset's\)"),
    ("warm-pool-explicit-fallbacks", dict(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool=True),
                                          purchase=PurchaseOptions(fallback_instance_types=("g6.2xlarge",))),
     r"scaling.warm_pool cannot be used with fallback instance types \(g6.2xlarge, from purchase.fallback_instance_types\)"),
    ("warm-pool-spot", dict(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool=True),
                            purchase=PurchaseOptions(option="spot")),
     r"scaling.warm_pool cannot be used with purchase option 'spot': spot makes a mixed-instances group"),
    # Administration ports behind an internet-facing load balancer.
    ("public-nlb-ssh", dict(**NLB_CPU, port=22, load_balancer=LoadBalancerOptions(kind="network", **PUBLIC_HTTP)),
     r"port \(22\) is the usual port of SSH .* network load balancer would send internet traffic to it and open it to "
     r"0.0.0.0/0 on the nodes"),
    ("public-alb-postgres", dict(instance_type="g6.xlarge", port=5432, load_balancer=LoadBalancerOptions(**PUBLIC_HTTP)),
     r"port \(5432\) is the usual port of PostgreSQL .* application load balancer would send internet traffic to it;"),
    # Web ACL and certificate in another region than the stack's.
    ("web-acl-other-region", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(web_acl_arn=WEB_ACL_EU)),
     r"load_balancer.web_acl_arn \(arn:aws:wafv2:eu-west-1:.*\) is in eu-west-1; a load balancer in us-east-1 can use "
     r"only a web ACL of us-east-1"),
    ("certificate-other-region", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(
        certificate=CERTIFICATE_ARN.replace("us-east-1", "eu-west-1"))),
     r"load_balancer.certificate \(arn:aws:acm:eu-west-1:.*\) is in eu-west-1; a load balancer in us-east-1 can use only"),
    ("certificate-not-an-arn", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(certificate="my-cert")),
     r"load_balancer.certificate \('my-cert'\) must be an ACM certificate or its ARN"),
    ("certificate-a-number", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(certificate=42)),
     r"load_balancer.certificate \(42\) must be an"),
    # Alarm thresholds and scaling targets out of range; NaN and infinity never reach jsii.
    ("p99-negative", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=-1)),
     r"fleet_alarms.p99_latency_seconds \(-1\) must be a number above 0"),
    ("p99-zero", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=0)),
     r"fleet_alarms.p99_latency_seconds \(0\) must be a number above 0"),
    ("p99-nan", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=float("nan"))),
     r"fleet_alarms.p99_latency_seconds \(nan\) must be a finite number"),
    ("p99-inf", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(p99_latency_seconds=float("inf"))),
     r"fleet_alarms.p99_latency_seconds \(inf\) must be a finite number"),
    ("error-rate-above-100", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent=150)),
     r"fleet_alarms.error_rate_percent \(150\) must be a number above 0 and at most 100"),
    ("error-rate-negative", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent=-5)),
     r"fleet_alarms.error_rate_percent \(-5\) must be a number above 0 and at most 100"),
    ("error-rate-nan", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent=float("nan"))),
     r"fleet_alarms.error_rate_percent \(nan\) must be a finite number"),
    ("error-rate-string", dict(instance_type="g6.xlarge", fleet_alarms=FleetAlarmOptions(error_rate_percent="5")),
     r"fleet_alarms.error_rate_percent \('5'\) must be a (finite )?number"),
    ("scaling-target-inf", dict(instance_type="g6.xlarge", scaling=ScalingOptions(target=float("inf"))),
     r"scaling.target \(inf\) must be a finite number"),
    ("scaling-target-percent-above-100", dict(instance_type="g6.xlarge", scaling=ScalingOptions(signal="cpu", target=150)),
     r"scaling.target \(150\) must be positive and at most 100 \(percent, signal 'cpu'\)"),
    ("scaling-warmup-seconds", dict(instance_type="g6.xlarge", scaling=ScalingOptions(warmup=600)),
     r"scaling.warmup \(600\) must be"),
    # Booleans are booleans.
    ("allow-public-without-tls-string", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(
        internet_facing=True, allow_public_without_tls="false")),
     r"load_balancer.allow_public_without_tls \('false'\) must be True or False"),
    ("internet-facing-string", dict(instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(internet_facing="no")),
     r"load_balancer.internet_facing \('no'\) must be True or False"),
    ("warm-pool-string", dict(instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool="false")),
     r"scaling.warm_pool \('false'\) must be True or False"),
]


@pytest.mark.parametrize(("kwargs", "message"), [pytest.param(k, m, id=i) for i, k, m in FLEET_BAD_INPUT])
def test_issue_14_bad_input_is_a_configuration_error(kwargs, message):
    stack = cdk.Stack(cdk.App(context=cli_context()), "Bad", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(ConfigurationError, match=message):
        InferenceFleet(stack, "Fleet", **kwargs)


def test_nan_and_infinity_are_refused_before_jsii_and_the_kernel_survives():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Nan", env=cdk.Environment(region="us-east-1"))
    for alarms in (FleetAlarmOptions(p99_latency_seconds=float("nan")), FleetAlarmOptions(error_rate_percent=float("inf"))):
        with pytest.raises(ConfigurationError, match="must be a finite number"):
            InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", fleet_alarms=alarms)
    # A dead kernel fails every later call with BrokenPipe; this one still works.
    assert cdk.Stack(cdk.App(), "After").resolve(cdk.Duration.minutes(2).to_seconds()) == 120


@pytest.mark.parametrize("port", [22, 3389, 5432, 3306, 6379, 9200, 2379, 10250])
def test_administration_ports_are_refused_behind_a_public_nlb_and_allowed_internally(port):
    """The test's own list of ports (the issue's), not the module's table."""
    stack = cdk.Stack(cdk.App(context=cli_context()), "Ports", env=cdk.Environment(region="us-east-1"))
    with pytest.raises(ConfigurationError, match=rf"port \({port}\) is the usual port of .*0\.0\.0\.0/0"):
        InferenceFleet(stack, "Public", **NLB_CPU, port=port, load_balancer=LoadBalancerOptions(kind="network", **PUBLIC_HTTP))
    internal = InferenceFleet(stack, "Internal", **NLB_CPU, port=port, load_balancer=LoadBalancerOptions(kind="network"))
    assert internal.port == port


def test_a_warm_pool_on_a_one_type_on_demand_group_drops_nothing_silently():
    """With the preset's fallbacks turned off explicitly, the group has one type and no mixed instances policy,
    and the warm pool is attached to it."""
    def build(app):
        stack = cdk.Stack(app, "Warm", env=cdk.Environment(region="us-east-1"))
        build.fleet = InferenceFleet(stack, "Fleet", preset="serving-nvidia", scaling=ScalingOptions(warm_pool=True),
                                     purchase=PurchaseOptions(fallback_instance_types=()))
        return [stack]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    stack, fleet = result.stacks["Warm"], build.fleet
    asg = asg_of(result.templates["Warm"])
    assert "MixedInstancesPolicy" not in asg and asg["LaunchTemplate"]["LaunchTemplateId"] == {
        "Ref": stack.get_logical_id(fleet.launch_template.node.default_child)}
    assert fleet.instance_types == ("g6.xlarge",)
    (pool,) = props(result.templates["Warm"], "AWS::AutoScaling::WarmPool")
    assert pool == {"AutoScalingGroupName": {"Ref": stack.get_logical_id(fleet.auto_scaling_group.node.default_child)},
                    "MinSize": 1, "PoolState": "Stopped"}


def fleet_of(result, name):
    return result.stacks[name].node.find_child("Fleet")


@pytest.mark.parametrize("name", ["Inf2Small", "Nlb"])
def test_an_internal_load_balancer_sits_in_exactly_the_private_subnets_of_its_vpc(result, name):
    stack, fleet = result.stacks[name], fleet_of(result, name)
    vpc = fleet.node.find_child("Network").vpc
    private = [{"Ref": stack.get_logical_id(s.node.default_child)} for s in vpc.private_subnets]
    public = [{"Ref": stack.get_logical_id(s.node.default_child)} for s in vpc.public_subnets]
    (balancer,) = props(result.templates[name], "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Subnets"] == private and len(private) >= 2
    assert not set(map(str, balancer["Subnets"])) & set(map(str, public))


def test_a_public_load_balancer_sits_in_exactly_the_public_subnets():
    def build(app):
        build.fleet = open_fleet(app)
        return [cdk.Stack.of(build.fleet)]
    result = synth(build, cli_context(), nag=False)
    stack, vpc = result.stacks["Open"], build.fleet.node.find_child("Network").vpc
    (balancer,) = props(result.templates["Open"], "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Subnets"] == [{"Ref": stack.get_logical_id(s.node.default_child)} for s in vpc.public_subnets]


@pytest.mark.parametrize("name", ["G6", "Nlb"])
def test_the_fleet_exposes_its_load_balancer_and_outputs_its_dns_name(result, name):
    stack, fleet = result.stacks[name], fleet_of(result, name)
    balancer_id = stack.get_logical_id(fleet.load_balancer.node.default_child)
    assert fleet.load_balancer.node.path == f"{name}/Fleet/LoadBalancer"
    assert fleet.listener.node.path == f"{name}/Fleet/LoadBalancer/Listener"
    assert fleet.target_group.node.path == f"{name}/Fleet/Targets"
    outputs = [o for o in result.templates[name]["Outputs"].values() if o["Value"] == {"Fn::GetAtt": [balancer_id, "DNSName"]}]
    assert [o["Description"].startswith("Fleet: the load balancer's DNS name (internal, plain on 80)") for o in outputs] == [True]
    (listener,) = props(result.templates[name], "AWS::ElasticLoadBalancingV2::Listener")
    assert listener["LoadBalancerArn"] == {"Ref": balancer_id}
    assert listener["DefaultActions"][0]["TargetGroupArn"] == {"Ref": stack.get_logical_id(fleet.target_group.node.default_child)}


@pytest.mark.parametrize(("kwargs", "port"), [({}, 8080), (dict(port=50051, scaling=ScalingOptions(signal="cpu"),
                                                                 load_balancer=LoadBalancerOptions(kind="network")), 50051)])
def test_connections_default_port_is_the_model_server_port(kwargs, port):
    def build(app):
        stack = cdk.Stack(app, "Conn", env=cdk.Environment(region="us-east-1"))
        build.fleet = InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", **kwargs)
        build.fleet.connections.allow_default_port_from(ec2.Peer.ipv4("10.99.0.0/16"), "clients from the peered VPC")
        return [stack]
    result = synth(build, cli_context(), nag=False)
    group = result.templates["Conn"]["Resources"][result.stacks["Conn"].get_logical_id(build.fleet.security_group.node.default_child)]
    assert {"CidrIp": "10.99.0.0/16", "Description": "clients from the peered VPC", "FromPort": port, "IpProtocol": "tcp",
            "ToPort": port} in group["Properties"]["SecurityGroupIngress"]
    assert build.fleet.connections.default_port.to_string() == str(port)


def test_bucket_grant_read_to_the_fleet_reaches_the_node_role_with_kms_decrypt():
    """CDK's direction: the bucket grants to the fleet (an IGrantable), and grant_read adds kms:Decrypt on the
    bucket's key."""
    def build(app):
        stack = cdk.Stack(app, "Grant", env=cdk.Environment(region="us-east-1"))
        build.bucket = s3.Bucket(stack, "Models", encryption=s3.BucketEncryption.KMS, enforce_ssl=True)
        build.fleet = InferenceFleet(stack, "Fleet", instance_type="g6.xlarge")
        build.bucket.grant_read(build.fleet)
        return [stack]
    result = synth(build, cli_context(), nag=False)
    stack = result.stacks["Grant"]
    role = {"Ref": stack.get_logical_id(build.fleet.role.node.default_child)}
    key = stack.get_logical_id(build.bucket.encryption_key.node.default_child)
    bucket = stack.get_logical_id(build.bucket.node.default_child)
    statements = [st for p in props(result.templates["Grant"], "AWS::IAM::Policy") if p["Roles"] == [role]
                  for st in p["PolicyDocument"]["Statement"]]
    reads = [st for st in statements if "s3:GetObject*" in st["Action"]]
    assert reads and {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]} in reads[0]["Resource"]
    assert any("kms:Decrypt" in st["Action"] and st["Resource"] == {"Fn::GetAtt": [key, "Arn"]} for st in statements)


def test_recommendation_is_a_declared_attribute_that_is_none_unless_from_workload(result):
    assert "recommendation" in _InferenceFleet.__annotations__ and _InferenceFleet.recommendation is None
    assert fleet_of(result, "G6").recommendation is None


def test_metric_methods_take_the_usual_metric_options(result):
    from aws_cdk import aws_cloudwatch as cloudwatch

    fleet = fleet_of(result, "G6")
    cpu = fleet.metric_cpu_utilization(period=cdk.Duration.minutes(1), statistic="Maximum", label="cpu",
                                       unit=cloudwatch.Unit.PERCENT, color="#d62728")
    assert (cpu.period.to_seconds(), cpu.statistic, cpu.label, cpu.unit, cpu.color) == (
        60, "Maximum", "cpu", cloudwatch.Unit.PERCENT, "#d62728")
    assert (cpu.namespace, cpu.metric_name) == ("AWS/EC2", "CPUUtilization")
    default = fleet.metric_accelerator_utilization()
    assert (default.period.to_seconds(), default.statistic, default.metric_name) == (300, "Average", "nvidia_smi_utilization_gpu")
    assert fleet.metric_accelerator_utilization(statistic="p90").statistic == "p90"
    assert fleet.metric_in_service_instances(label="servers").label == "servers"
    cost = fleet.metric_hourly_cost(label="USD per hour", period=cdk.Duration.hours(1))
    assert (cost.label, cost.period.to_seconds()) == ("USD per hour", 3600)
    with pytest.raises(ConfigurationError, match=r"metric options \(colour\) must be among account, color"):
        fleet.metric_cpu_utilization(colour="red")


def test_nvidia_memory_utilization_math_takes_options_on_the_expression_and_its_metrics(result):
    memory = fleet_of(result, "G6").metric_accelerator_memory_utilization(
        period=cdk.Duration.minutes(1), label="HBM", statistic="Maximum")
    assert (memory.expression, memory.label, memory.period.to_seconds()) == ("100 * used / total", "HBM", 60)
    assert {(m.metric_name, m.statistic, m.period.to_seconds()) for m in memory.using_metrics.values()} == {
        ("nvidia_smi_memory_used", "Maximum", 60), ("nvidia_smi_memory_total", "Maximum", 60)}
    neuron = fleet_of(result, "Inf2Small").metric_accelerator_memory_utilization(period=cdk.Duration.minutes(1), label="HBM")
    assert (neuron.metric_name, neuron.label, neuron.period.to_seconds()) == ("neuron_device_memory_utilization", "HBM", 60)


def test_fleet_alarm_thresholds_reach_the_alarms():
    def build(app):
        stack = cdk.Stack(app, "Thresholds", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge",
                       fleet_alarms=FleetAlarmOptions(p99_latency_seconds=2.5, error_rate_percent=100))
        return [stack]
    result = synth(build, cli_context(), nag=False)
    alarms = {p["AlarmDescription"].split(": ", 1)[1]: p for p in props(result.templates["Thresholds"], "AWS::CloudWatch::Alarm")}
    assert alarms["p99 response time above 2.5 s"]["Threshold"] == 2.5
    assert alarms["5xx responses above 100% of requests"]["Threshold"] == 100


def test_a_certificate_given_as_an_arn_is_imported_and_serves_tls():
    def build(app):
        stack = cdk.Stack(app, "Arn", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(
            internet_facing=True, certificate=CERTIFICATE_ARN, web_acl_arn=WEB_ACL))
        stack2 = cdk.Stack(app, "ArnNlb", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack2, "Fleet", **NLB_CPU, port=50051, load_balancer=LoadBalancerOptions(
            kind="network", internet_facing=True, certificate=CERTIFICATE_ARN))
        return [stack, stack2]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    (https,) = props(result.templates["Arn"], "AWS::ElasticLoadBalancingV2::Listener")
    assert (https["Port"], https["Protocol"], https["Certificates"]) == (443, "HTTPS", [{"CertificateArn": CERTIFICATE_ARN}])
    (tls,) = props(result.templates["ArnNlb"], "AWS::ElasticLoadBalancingV2::Listener")
    assert (tls["Port"], tls["Protocol"], tls["Certificates"]) == (443, "TLS", [{"CertificateArn": CERTIFICATE_ARN}])
    (ingress,) = [r for r in props(result.templates["ArnNlb"], "AWS::EC2::SecurityGroupIngress") if r.get("FromPort") == 50051]
    assert ingress["CidrIp"] == "0.0.0.0/0"
    (warning,) = Annotations.from_stack(result.stacks["ArnNlb"]).find_warning(
        "/ArnNlb/Fleet", Match.string_like_regexp(".*without a web ACL.*"))
    assert "AWS WAF cannot attach to a network load balancer" in warning.entry.data


def test_an_env_agnostic_stack_warns_where_its_web_acl_and_certificate_can_deploy():
    stack = cdk.Stack(cdk.App(context=cli_context()), "Agnostic")
    InferenceFleet(stack, "Fleet", instance_type="g6.xlarge", load_balancer=LoadBalancerOptions(
        internet_facing=True, certificate=CERTIFICATE_ARN, web_acl_arn=WEB_ACL_EU))
    warnings = [w.entry.data for w in Annotations.from_stack(stack).find_warning(
        "/Agnostic/Fleet", Match.string_like_regexp(".*env-agnostic stack to.*"))]
    assert sorted(w.split(" [ack")[0] for w in warnings) == [
        "the certificate is in us-east-1, and a load balancer can use only one of its own region: deploy this "
        "env-agnostic stack to us-east-1 only",
        "the web ACL is in eu-west-1, and a load balancer can use only one of its own region: deploy this "
        "env-agnostic stack to eu-west-1 only"]


FLEET_ONLY_SYNTH = """
import aws_cdk as cdk
from mlcdk import CapacityOptions, InferenceFleet, LoadBalancerOptions, ModelOptions, PurchaseOptions, ScalingOptions
from tests.harness import cli_context
app = cdk.App(context=cli_context(), outdir={outdir!r})
env = cdk.Environment(region="us-east-1")
InferenceFleet(cdk.Stack(app, "Alb", env=env), "Fleet", preset="llm-serving-inferentia2",
               model=ModelOptions(source="TinyLlama/TinyLlama-1.1B-Chat-v1.0"))
InferenceFleet(cdk.Stack(app, "Warm", env=env), "Fleet", instance_type="g6.xlarge", scaling=ScalingOptions(warm_pool=True),
               engine="nodes", model_server_command="serve")
InferenceFleet(cdk.Stack(app, "Nlb", env=env), "Fleet", instance_type="g6.xlarge", port=50051,
               scaling=ScalingOptions(signal="cpu"), load_balancer=LoadBalancerOptions(
                   kind="network", internet_facing=True, certificate={certificate!r}),
               model=ModelOptions(source="Qwen/Qwen2.5-7B"))
InferenceFleet(cdk.Stack(app, "Agnostic"), "Fleet", instance_type="g6.xlarge", engine="nodes")
app.synth()
print("synthesized")
"""


def test_a_fleet_only_synth_prints_no_deprecation_warning(tmp_path):
    """HealthCheck#elb, ElbHealthCheckOptions#grace and CommonAutoScalingGroupProps#healthCheck are deprecated;
    jsii prints "[WARNING] ... is deprecated" on stderr when anything (mlcdk or aws-cdk on its behalf) uses them."""
    import os
    import subprocess
    import sys

    from tests.harness import ROOT

    code = FLEET_ONLY_SYNTH.format(outdir=str(tmp_path / "out"), certificate=CERTIFICATE_ARN)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "JSII_DEPRECATED": "warn", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and "synthesized" in run.stdout, run.stderr[-3000:]
    assert "deprecated" not in run.stdout + run.stderr


def test_a_fallback_not_offered_in_the_stacks_region_is_refused():
    """g6.xlarge is not offered in eu-west-1 (catalog offerings), so it cannot back g5.xlarge there."""
    stack = cdk.Stack(cdk.App(context=cli_context()), "Ireland", env=cdk.Environment(region="eu-west-1"))
    with pytest.raises(ConfigurationError, match=r"purchase.fallback_instance_types: g6.xlarge cannot replace "
                                                 r"g5.xlarge: it is not offered in eu-west-1"):
        InferenceFleet(stack, "Fleet", instance_type="g5.xlarge", min_capacity=2, max_capacity=6,
                       purchase=PurchaseOptions(option="mixed", on_demand_base_capacity=2,
                                                fallback_instance_types=("g6.xlarge",)))
