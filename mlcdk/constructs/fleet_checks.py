"""InferenceFleet's construction-time checks: tables of (failed, message) rows, evaluated before any resource."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcdk.constructs.guardrail_options import GuardrailOptions
from mlcdk.constructs.options import PurchaseOptions
from mlcdk.constructs.validation import check, concrete
from mlcdk.presets import metrics, model_server, workloads
from mlcdk.presets.catalog import InstanceSpec
from mlcdk.presets.counts import MAX_CAPACITY

if TYPE_CHECKING:  # the option groups' modules import aws_cdk (Duration, ACM and Secrets Manager types); this one must not
    from mlcdk.constructs.fleet_options import FleetAlarmOptions, LoadBalancerOptions, ScalingOptions
    from mlcdk.constructs.model import ModelOptions

#: The signals a fleet scales on, and the ones that need the ECS engine (the server's own metrics).
SCALING_SIGNALS = ("requests", "queue", "accelerator", "cpu")
ECS_ONLY_SIGNALS = ("queue",)
#: Default targets per signal: requests per target per minute, waiting requests per server, percent.
DEFAULT_TARGETS = {"requests": 60, "queue": 4, "accelerator": 70, "cpu": 60}
#: A regional AWS WAF (v2) web ACL, the kind an application load balancer can use; group 1 is its region.
WEB_ACL_ARN = re.compile(r"arn:aws[a-z-]*:wafv2:([a-z0-9-]+):\d{12}:regional/webacl/[\w-]{1,128}/[0-9a-f-]{36}")
#: An ACM certificate; group 1 is its region (a load balancer can use only a certificate of its own region).
CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate/[\w-]{1,128}")
#: Ports that an internet-facing fleet must not serve on: an internet-facing load balancer forwards the
#: internet's requests to the serving port (an NLB also opens it to 0.0.0.0/0 in the nodes' security group),
#: so whatever usually listens there (a shell, a database, a cluster agent) would face the internet too.
#: A short list of the services that attackers scan for, each with where the port assignment comes from:
#: IANA's Service Name and Port Number Registry, else the product's own documentation. Most also appear in
#: AWS Security Hub control EC2.19 ("high-risk ports"), which flags the same exposure after deploy.
SENSITIVE_PORTS: dict[int, str] = {
    22: "SSH (IANA: ssh)",
    23: "Telnet (IANA: telnet)",
    445: "SMB (IANA: microsoft-ds)",
    1433: "Microsoft SQL Server (IANA: ms-sql-s)",
    2375: "the Docker daemon API without TLS (IANA: docker)",
    2376: "the Docker daemon API (IANA: docker-s)",
    2379: "the etcd client API (IANA: etcd-client; Kubernetes 'Ports and Protocols')",
    3306: "MySQL (IANA: mysql)",
    3389: "RDP (IANA: ms-wbt-server)",
    5432: "PostgreSQL (IANA: postgresql)",
    6379: "Redis (Redis documentation, default port)",
    9200: "the Elasticsearch/OpenSearch REST API (Elasticsearch documentation, http.port default)",
    10250: "the kubelet API (Kubernetes 'Ports and Protocols')",
    27017: "MongoDB (IANA: mongodb)",
}




@dataclass(frozen=True)
class FleetShape:
    """The fleet's resolved size, serving port and options: what the checks read."""

    spec: InstanceSpec
    low: object
    high: object
    port: int
    health_check_path: str
    balancer: LoadBalancerOptions
    scale: ScalingOptions
    purchase: PurchaseOptions
    alarms: FleetAlarmOptions
    region: str | None


def validate(shape: FleetShape) -> None:
    """Ranges and rules of the size, port, load balancer, scaling and alarms (types were checked by mlcdk.params)."""
    spec, low, high, port, balancer, scale = shape.spec, shape.low, shape.high, shape.port, shape.balancer, shape.scale
    check(certificate_problems(balancer.certificate, shape.region))
    rows = []
    if shape.region is not None:
        offered = spec.offered_azs(shape.region)
        offering = workloads.offering_problem(spec, shape.region)
        rows += [
            (offering is not None, f"instance_type: {offering}"),
            (len(offered) == 1, f"instance_type: {spec.instance_type} is offered in only one AZ of {shape.region} "
                                f"({offered[0] if offered else ''}); a fleet needs two for availability"),
        ]
    if concrete(low) and concrete(high):
        rows += [
            (low < 0, f"min_capacity ({low!r}) must be a whole number of at least 0"),
            (not 1 <= high <= MAX_CAPACITY, f"max_capacity ({high!r}) must be a whole number from 1 to {MAX_CAPACITY}"),
            (low > high, f"min_capacity ({low}) must not exceed max_capacity ({high})"),
        ]
    rows += [
        (not 1 <= port <= 65535, f"port ({port!r}) must be from 1 to 65535"),
        (not shape.health_check_path.startswith("/"),
         f"health_check_path ({shape.health_check_path!r}) must start with '/'"),
        *_balancer_rows(balancer, shape.region),
        sensitive_port_row(port, balancer),
        *_scaling_rows(spec, scale, balancer),
        *_alarm_rows(shape.alarms),
    ]
    check(rows)


def _balancer_rows(balancer: LoadBalancerOptions, region: str | None) -> list[tuple[bool, str]]:
    acl_region = arn_region(WEB_ACL_ARN, balancer.web_acl_arn)
    return [
        (balancer.kind not in ("application", "network"),
         f"load_balancer.kind ({balancer.kind!r}) must be application or network"),
        (balancer.internet_facing and balancer.certificate is None and not balancer.allow_public_without_tls,
         "load_balancer: an internet-facing fleet needs a certificate (HTTPS/TLS); set "
         "allow_public_without_tls=True to serve plain HTTP/TCP to the internet"),
        (balancer.web_acl_arn is not None and balancer.kind != "application",
         "load_balancer.web_acl_arn: AWS WAF protects application load balancers only; use kind='application'"),
        (balancer.web_acl_arn is not None and not (isinstance(balancer.web_acl_arn, str) and (
            not concrete(balancer.web_acl_arn) or WEB_ACL_ARN.fullmatch(balancer.web_acl_arn))),
         f"load_balancer.web_acl_arn ({balancer.web_acl_arn!r}) must be a regional WAFv2 web ACL ARN "
         "(arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)"),
        (region is not None and acl_region is not None and acl_region != region,
         f"load_balancer.web_acl_arn ({balancer.web_acl_arn}) is in {acl_region}; a load balancer in {region} "
         f"can use only a web ACL of {region}"),
    ]


def _scaling_rows(spec: InstanceSpec, scale: ScalingOptions, balancer: LoadBalancerOptions) -> list[tuple[bool, str]]:
    percent = scale.signal in ("accelerator", "cpu")
    return [
        (scale.signal not in SCALING_SIGNALS,
         f"scaling.signal ({scale.signal!r}) must be one of {', '.join(SCALING_SIGNALS)}"),
        (scale.signal == "requests" and balancer.kind == "network",
         "scaling.signal ('requests') needs an application load balancer; use 'accelerator' or 'cpu' with a network one"),
        (scale.signal == "accelerator" and metrics.metric_names(spec.accelerator.kind if spec.accelerator else None) is None,
         f"scaling.signal ('accelerator'): mlcdk publishes no accelerator metrics for {spec.instance_type}; use 'cpu'"),
        (scale.target is not None and concrete(scale.target) and not (0 < scale.target <= (100 if percent else math.inf)),
         f"scaling.target ({scale.target}) must be positive" + (f" and at most 100 (percent, signal {scale.signal!r})"
                                                                 if percent else "")),
    ]


def _alarm_rows(alarms: FleetAlarmOptions) -> list[tuple[bool, str]]:
    return [
        (concrete(alarms.p99_latency_seconds) and not alarms.p99_latency_seconds > 0,
         f"fleet_alarms.p99_latency_seconds ({alarms.p99_latency_seconds}) must be above 0"),
        (concrete(alarms.error_rate_percent) and not 0 < alarms.error_rate_percent <= 100,
         f"fleet_alarms.error_rate_percent ({alarms.error_rate_percent}) must be above 0 and at most 100"),
    ]


@dataclass(frozen=True)
class EngineChoice:
    """What runs the servers: the engine and the options only one engine takes."""

    engine: str
    model: ModelOptions | None
    model_server_command: str | None
    model_bucket: object | None
    guardrails: GuardrailOptions | None


def validate_engine(choice: EngineChoice, shape: FleetShape) -> None:
    """engine="ecs" runs ModelOptions' server; engine="nodes" runs model_server_command. Each refuses the other's
    options, with what to use instead."""
    ecs = choice.engine == "ecs"
    reserved = model_server.facts().reserved_ports
    check([
        (choice.engine not in workloads.FLEET_ENGINES,
         f"engine ({choice.engine!r}) must be one of {', '.join(workloads.FLEET_ENGINES)}"),
        (ecs and choice.model is None,
         "model: engine='ecs' (the default) serves a model with vLLM; pass model=ModelOptions(source=...) (an "
         "s3:// prefix or a Hugging Face model ID), or engine='nodes' with model_server_command for your own server"),
        (ecs and choice.model_server_command is not None,
         "model_server_command runs on engine='nodes'; with engine='ecs' give ModelOptions(image=..., command=...)"),
        (ecs and choice.model_bucket is not None,
         "model_bucket grants the node role, which ECS tasks cannot use; with engine='ecs' give "
         "ModelOptions(source='s3://bucket/prefix') (the task role reads it), or grant the fleet (fleet.grant_principal "
         "is the task role)"),
        (not ecs and choice.model is not None,
         "model: ModelOptions describes the server engine='ecs' runs; with engine='nodes' pass model_server_command"),
        (not ecs and shape.scale.signal in ECS_ONLY_SIGNALS,
         f"scaling.signal ({shape.scale.signal!r}) reads the vLLM server's metrics, which engine='ecs' scrapes; use "
         "'requests', 'accelerator' or 'cpu' with engine='nodes'"),
        (ecs and shape.port in reserved,
         f"port ({shape.port}) is reserved by the ECS container agent on every node ({', '.join(map(str, reserved))}: "
         "ECS_RESERVED_PORTS); ECS would never place the server; use another port (default 8080)"),
        (ecs and choice.guardrails is not None and choice.guardrails.scale_to_zero_when_idle,
         "guardrails.scale_to_zero_when_idle sets the Auto Scaling group's size, which engine='ecs' leaves to the "
         "capacity provider; scale the service instead (scaling.signal with min_capacity=0)"),
    ])


def validate_warm_pool(scale: ScalingOptions, purchase: PurchaseOptions, fallbacks: tuple[str, ...]) -> None:
    """EC2 Auto Scaling refuses a warm pool on a group with a mixed instances policy, which NodeGroup builds
    for spot (or mixed) purchases and for more than one type (EC2 Auto Scaling User Guide, "Warm pools",
    limitations). The fallbacks are the ones the group will really get: explicit, or the preset's."""
    source = "from purchase.fallback_instance_types" if purchase.fallback_instance_types is not None else "the preset's"
    check([(scale.warm_pool and purchase.uses_spot,
            f"scaling.warm_pool cannot be used with purchase option {purchase.option!r}: spot makes a mixed-instances "
            "group, and EC2 Auto Scaling has no warm pools for mixed-instances groups; use purchase option "
            "'on-demand' without fallback types"),
           (scale.warm_pool and bool(fallbacks),
            f"scaling.warm_pool cannot be used with fallback instance types ({', '.join(fallbacks)}, {source}): "
            "several types "
            "make a mixed-instances group, and EC2 Auto Scaling has no warm pools for mixed-instances groups; pass "
            "purchase=PurchaseOptions(fallback_instance_types=()) to run one type on demand")])


def arn_region(pattern: re.Pattern, arn: object) -> str | None:
    """The region inside a concrete ARN that ``pattern`` matches, else None (tokens, malformed values)."""
    found = pattern.fullmatch(arn) if isinstance(arn, str) and concrete(arn) else None
    return found.group(1) if found else None


def certificate_problems(certificate: object, region: str | None) -> list[tuple[bool, str]]:
    """Check rows for ``LoadBalancerOptions.certificate``: an ACM certificate (``acm.ICertificate``) or its ARN,
    in the stack's region when the stack has one."""
    if certificate is None:
        return []
    if isinstance(certificate, str):
        arn = certificate
        rows = [(concrete(arn) and not CERTIFICATE_ARN.fullmatch(arn),
                 f"load_balancer.certificate ({certificate!r}) must be an ACM certificate or its ARN "
                 "(arn:aws:acm:<region>:<account>:certificate/<id>)")]
    else:
        rows = [(not hasattr(certificate, "certificate_arn"),
                 f"load_balancer.certificate ({certificate!r}) must be an ACM certificate (acm.ICertificate, e.g. "
                 "acm.Certificate.from_certificate_arn(...)) or its ARN as a string")]
        if rows[0][0]:
            return rows
        arn = certificate.certificate_arn
    where = arn_region(CERTIFICATE_ARN, arn)
    rows.append((region is not None and where is not None and where != region,
                 f"load_balancer.certificate ({arn}) is in {where}; a load balancer in {region} can use only an ACM "
                 f"certificate of {region}"))
    return rows


def sensitive_port_row(port: object, options: LoadBalancerOptions) -> tuple[bool, str]:
    """The check row that refuses an administration port (SENSITIVE_PORTS) behind an internet-facing load balancer."""
    service = SENSITIVE_PORTS.get(port) if isinstance(port, int) and not isinstance(port, bool) else None
    return (options.internet_facing is True and service is not None,
            f"port ({port}) is the usual port of {service}; an internet-facing {options.kind} load balancer would send "
            f"internet traffic to it{' and open it to 0.0.0.0/0 on the nodes' if options.kind == 'network' else ''}; "
            "serve the model on another port (default 8080), or keep the load balancer internal")
