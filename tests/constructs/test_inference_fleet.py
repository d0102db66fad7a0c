"""InferenceFleet: load balancer, target group, scaling, purchase mix, alarms, and every construction error."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from mlcdk import ConfigurationError, InferenceFleet, LoadBalancerOptions, PurchaseOptions, ScalingOptions
from mlcdk.presets import catalog
from tests.harness import cli_context, lint, nag_problems, synth

WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"

#: stack -> (region, InferenceFleet keyword arguments)
FLEETS = {
    "Inf2Small": ("us-east-1", dict(preset="llm-serving-inferentia2")),
    "Inf2Large": ("us-west-2", dict(instance_type="inf2.48xlarge", min_capacity=1, max_capacity=2,
                                    scaling=ScalingOptions(signal="accelerator", target=65))),
    "G5": ("eu-west-1", dict(instance_type="g5.xlarge", min_capacity=2, max_capacity=6,
                             purchase=PurchaseOptions(option="mixed", on_demand_base_capacity=2,
                                                      fallback_instance_types=("g6.xlarge",)))),
    "G6": ("us-east-1", dict(preset="serving-nvidia", scaling=ScalingOptions(warmup=cdk.Duration.minutes(20)))),
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


def test_public_http_is_allowed_only_on_request_and_warns():
    def build(app):
        stack = cdk.Stack(app, "Open", env=cdk.Environment(region="us-east-1"))
        InferenceFleet(stack, "Fleet", instance_type="g6.xlarge",
                       load_balancer=LoadBalancerOptions(internet_facing=True, allow_public_without_tls=True))
        return [stack]
    result = synth(build, cli_context())
    assert nag_problems(result) == []
    warnings = Annotations.from_stack(result.stacks["Open"]).find_warning("*", Match.string_like_regexp(".*without a certificate.*"))
    assert warnings


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
    cidr_rules = {"AwsSolutions-EC23", "NIST.800.53.R5-EC2RestrictedSSH", "NIST.800.53.R5-EC2RestrictedCommonPorts"}
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
    ({"instance_type": "g6.xlarge", "min_capacity": -1}, r"min_capacity \(-1\) must be a whole number of at least 0"),
    ({"instance_type": "g6.xlarge", "max_capacity": 0}, r"max_capacity \(0\) must be a whole number from 1 to 1000"),
    ({"instance_type": "g6.xlarge", "port": 70000}, r"port \(70000\) must be from 1 to 65535"),
    ({"instance_type": "g6.xlarge", "port": 0}, r"port \(0\) must be from 1 to 65535"),
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
    ({"instance_type": "g6.xlarge", "scaling": ScalingOptions(target=0)}, r"scaling.target \(0\) must be positive"),
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
