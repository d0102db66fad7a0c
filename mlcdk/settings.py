"""Stack settings read from CDK context (``-c key=value``, cdk.json), checked before any resource exists.

Pure Python: it imports no aws_cdk, so every bad flag is caught and tested without a synth. Context
values from the command line are strings; values from cdk.json may be typed. Both are accepted.

Precedence, implemented once in :func:`read_settings`: explicit context flags, then the preset, then
the defaults below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlcdk.errors import ConfigurationError, shown
from mlcdk.presets import catalog, fsx, model_server, nag_packs, workloads
from mlcdk.presets.counts import MAX_CAPACITY, MAX_NETWORK_AZS, MAX_NODES, MAX_SHARED_STORAGE_GIB
from mlcdk.presets.identifiers import parse_emails

DEFAULT_TRAINING_PRESET = "llm-pretrain-trainium"
DEFAULT_INFERENCE_PRESET = "llm-serving-inferentia2"

CONTEXT_KEYS = {
    "preset": "training preset (mlcdk presets list)",
    "instance_type": "training instance type; overrides the preset's",
    "nodes": "training node count; overrides the preset's",
    "engine": "how the training cluster runs jobs: batch (AWS Batch multi-node jobs, the default) or nodes (an Auto Scaling group of persistent nodes)",
    "inference_preset": "inference preset",
    "inference_instance_type": "inference instance type; overrides the preset's",
    "min_capacity": "inference fleet minimum size",
    "inference_engine": "how the inference fleet serves: ecs (vLLM on Amazon ECS, the default) or nodes (an Auto Scaling group; your server runs from your AMI or user data)",
    "model": "the model the inference fleet serves (engine ecs): a Hugging Face model ID or s3://bucket/prefix; default: TinyLlama/TinyLlama-1.1B-Chat-v1.0 (Apache-2.0)",
    "model_architecture": "the served model's shape for sizing, a known model name (e.g. llama-3.1-8b, qwen2.5-7b); needed for an S3 or unknown model unless model_params is given",
    "model_params": "the served model's parameter count (e.g. 8B) when its architecture is not known",
    "model_token_secret": "the complete ARN of a Secrets Manager secret holding a Hugging Face token, for gated models (never the token itself)",
    "max_capacity": "inference fleet maximum size",
    "region": "deploy region; default: CDK_DEFAULT_REGION (the CDK CLI sets it from your AWS configuration), else the AWS configuration's region; none anywhere is an error",
    "account": "deploy account; default: CDK_DEFAULT_ACCOUNT",
    "alarm_email": "comma-separated e-mail addresses for alarms",
    "preset_file": "YAML or JSON file with extra presets",
    "stacks": "comma-separated stacks to build: TrainingStack, InferenceStack (default: both)",
    "purchase_option": "training purchase option: on-demand, spot or mixed; overrides the preset's",
    "inference_purchase_option": "inference purchase option: on-demand, spot or mixed; overrides the preset's",
    "removal_policy": "retain (default) or destroy: what happens to the checkpoint bucket and keys on stack deletion",
    "shared_storage_gib": "training: an FSx for Lustre file system (PERSISTENT_2) of this many GiB at /fsx on every node, linked to the checkpoint bucket: 1200, 2400 or a multiple of 2400; default: none (it is billed while it exists)",
    "compliance_packs": "comma-separated opt-in cdk-nag packs that synth runs too: hipaa (HIPAA Security), pci_dss (PCI DSS 3.2.1); default: none (AwsSolutions and NIST 800-53 rev 5 always run)",
    "emulator": "true only for the local AWS emulator: an AMI parameter the emulator knows; never for real deploys",
}
#: The AMI parameter used under the local emulator (moto preloads only Amazon Linux parameters).
EMULATOR_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

#: Where the deployable stacks' region comes from, in order (resolve_region).
REGION_SOURCES = ("-c region", "CDK_DEFAULT_REGION", "the AWS configuration")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class WorkloadSettings:
    """What one stack deploys: a preset, possibly overridden, with its placement."""

    preset: workloads.WorkloadPreset
    instance_type: str
    nodes: int  #: training: node count; inference: desired = min_capacity
    min_capacity: int
    max_capacity: int
    availability_zone_ids: tuple[str, ...]  #: offered AZ IDs used by the network; empty when env-agnostic
    purchase_option: str = "on-demand"

    @property
    def spec(self) -> catalog.InstanceSpec:
        return catalog.get(self.instance_type)


@dataclass(frozen=True)
class ModelSettings:
    """The inference fleet's model, from context (checked; the stack turns it into ModelOptions)."""

    source: str
    architecture: str | None = None
    params: str | None = None
    token_secret_arn: str | None = None


@dataclass(frozen=True)
class AppSettings:
    training: WorkloadSettings
    inference: WorkloadSettings
    region: str  #: always resolved (resolve_region); the stacks are never env-agnostic
    account: str | None
    alarm_emails: tuple[str, ...]
    removal_policy: str = "retain"
    emulator: bool = False
    stacks: tuple[str, ...] = ("TrainingStack", "InferenceStack")
    engine: str = "batch"
    shared_storage_gib: int | None = None  #: the training cluster's FSx for Lustre capacity; None: no file system
    region_source: str = REGION_SOURCES[0]  #: where ``region`` came from (REGION_SOURCES)
    inference_engine: str = "ecs"
    model: ModelSettings | None = None  #: None: the default model (model_server.json), with inference_engine ecs
    compliance_packs: tuple[str, ...] = ()  #: add_checks keywords of the opt-in cdk-nag packs to run ("hipaa", "pci_dss")


def _int(context: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = context.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"{key} ({shown(value)}) must be a whole number from {low} to {high}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{key} ({shown(value)}) must be a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise ConfigurationError(f"{key} ({number}) must be from {low} to {high}")
    return number


def _str(context: Mapping[str, Any], key: str) -> str | None:
    value = context.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{key} ({shown(value)}) must be a non-empty string")
    return value.strip()


def _bool(context: Mapping[str, Any], key: str) -> bool:
    value = context.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f"{key} ({shown(value)}) must be true or false")


def offered_azs(spec: catalog.InstanceSpec, region: str | None, parameter: str) -> tuple[str, ...]:
    """The AZ IDs of ``region`` that offer ``spec`` (at most MAX_NETWORK_AZS); error if none."""
    if region is None:
        return ()
    if problem := workloads.offering_problem(spec, region):
        raise ConfigurationError(f"{parameter}: {problem}")
    return spec.offered_azs(region)[:MAX_NETWORK_AZS]


def _workload(context: Mapping[str, Any], *, inference: bool, region: str | None, preset_file: str | None) -> WorkloadSettings:
    prefix = "inference_" if inference else ""
    preset_key = f"{prefix}preset"
    name = _str(context, preset_key) or (DEFAULT_INFERENCE_PRESET if inference else DEFAULT_TRAINING_PRESET)
    preset = workloads.get(name, preset_file, parameter=preset_key)
    if problem := workloads.preset_task_problem(preset, inference=inference, needed_by=preset_key):
        raise ConfigurationError(f"{preset_key} ({shown(name)}) {problem}")
    type_key = f"{prefix}instance_type"
    instance_type = _str(context, type_key) or preset.instance_type
    spec = catalog.get(instance_type, parameter=type_key)
    azs = offered_azs(spec, region, type_key)
    purchase_key = f"{prefix}purchase_option"
    purchase = _choice(context, purchase_key, workloads.PURCHASE_OPTIONS, preset.purchase_option)
    if problem := workloads.purchase_problem(purchase, spec):
        raise ConfigurationError(f"{purchase_key} ({shown(purchase)}): {problem}")
    if inference:
        low = _int(context, "min_capacity", 0, MAX_CAPACITY)
        high = _int(context, "max_capacity", 1, MAX_CAPACITY)
        low = preset.min_capacity if low is None else low
        high = preset.max_capacity if high is None else high
        if low > high:
            raise ConfigurationError(f"min_capacity ({low}) must not exceed max_capacity ({high})")
        return WorkloadSettings(preset, instance_type, low, low, high, azs, purchase)
    nodes = _int(context, "nodes", 1, MAX_NODES)
    nodes = preset.nodes if nodes is None else nodes
    return WorkloadSettings(preset, instance_type, nodes, 0, nodes, azs, purchase)


def aws_configured_region() -> str | None:
    """The region this machine's AWS configuration names, as the AWS SDKs resolve it (botocore's ``region`` setting:
    AWS_DEFAULT_REGION, then the profile's ``region`` in the AWS config file), read offline: no credentials, no
    instance metadata, no network. None when nothing names one."""
    import botocore.exceptions
    import botocore.session

    try:
        return botocore.session.Session().get_config_variable("region") or None
    except botocore.exceptions.ProfileNotFound as error:
        raise ConfigurationError(f"region: the AWS configuration cannot be read ({error}); pass -c region=REGION") from None


NO_REGION = ("region: none given and none configured; pass -c region=REGION, set CDK_DEFAULT_REGION, or configure "
             "one for the AWS CLI (aws configure set region REGION): the stacks pin their subnets to the AZ IDs of "
             "that region that offer the instance type")


def resolve_region(context: Mapping[str, Any], environ: Mapping[str, str],
                   aws_region: Callable[[], str | None]) -> tuple[str | None, str | None]:
    """The deployable stacks' region and its source (REGION_SOURCES): the ``region`` context flag, else
    CDK_DEFAULT_REGION (the CDK CLI sets it from the AWS configuration, or to us-east-1 when it finds none),
    else ``aws_region()``. (None, None) when none of them names one; a region that is not one is refused."""
    given = (_str(context, "region"), environ.get("CDK_DEFAULT_REGION") or None)
    for source, region in zip(REGION_SOURCES, given):
        if region is not None:
            return catalog.default_catalog().check_region(region, "region" if source == "-c region" else source), source
    region = aws_region()
    if region is None:
        return None, None
    return catalog.default_catalog().check_region(region, REGION_SOURCES[2]), REGION_SOURCES[2]


def read_settings(context: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                  aws_region: Callable[[], str | None] = aws_configured_region) -> AppSettings:
    """Check every context value and resolve the settings of both stacks.

    ``context`` maps context keys to values (``app.node.try_get_context`` for each of
    :data:`CONTEXT_KEYS`). ``environ`` supplies CDK_DEFAULT_REGION and CDK_DEFAULT_ACCOUNT. The stacks always get a
    region (:func:`resolve_region`); with none anywhere, every other flag is still checked, then NO_REGION is raised.
    """
    environ = environ or {}
    region, region_source = resolve_region(context, environ, aws_region)
    account = _str(context, "account") or environ.get("CDK_DEFAULT_ACCOUNT") or None
    if account is not None and not _ACCOUNT.match(account):
        raise ConfigurationError(f"account ({shown(account)}) must be a 12-digit AWS account ID")
    preset_file = _str(context, "preset_file")
    stacks = _stacks(context)
    engine = _choice(context, "engine", workloads.ENGINES, "batch")
    # A stack that is not built is still parsed (a typo is an error) but not checked against the region.
    training = _workload(context, inference=False, preset_file=preset_file,
                         region=region if "TrainingStack" in stacks else None)
    problem = workloads.engine_purchase_problem(engine, training.purchase_option, training.nodes)
    if problem is not None and "TrainingStack" in stacks:
        raise ConfigurationError(f"purchase_option ({shown(training.purchase_option)}) {problem.replace('engine=', '-c engine=')}")
    inference = _workload(context, inference=True, preset_file=preset_file,
                          region=region if "InferenceStack" in stacks else None)
    rest = dict(
        inference=inference,
        alarm_emails=parse_emails(context.get("alarm_email")),
        removal_policy=_choice(context, "removal_policy", ("retain", "destroy"), "retain"),
        emulator=_bool(context, "emulator"),
        shared_storage_gib=_shared_storage_gib(context),
        inference_engine=_inference_engine(context, inference),
        model=_model(context),
        compliance_packs=_names(context, "compliance_packs", _opt_in_packs()) or (),
    )
    if region is None:  # after every other flag: a typo is reported as such first
        raise ConfigurationError(NO_REGION)
    return AppSettings(training=training, region=region, region_source=region_source, account=account, stacks=stacks,
                       engine=engine, **rest)


def _inference_engine(context: Mapping[str, Any], inference: WorkloadSettings) -> str:
    """ecs (the default) or nodes; ecs only where a vLLM Deep Learning Container drives the fleet's accelerator."""
    engine = _choice(context, "inference_engine", workloads.FLEET_ENGINES, "ecs")
    if engine == "ecs" and not model_server.serves(inference.spec):
        raise ConfigurationError(
            f"inference_engine ('ecs'): no vLLM Deep Learning Container serves {inference.instance_type} (the preset "
            f"{inference.preset.name!r} or inference_instance_type); use -c inference_engine=nodes and start your server "
            "on the nodes, or an NVIDIA, Inferentia2 or Trainium type")
    return engine


def _model(context: Mapping[str, Any]) -> ModelSettings:
    """The model flags, each checked here (a malformed source, architecture or ARN fails before any synth)."""
    from mlcdk.presets import sizing# imported here: the model table is read only when flags name a model

    source = _str(context, "model") or model_server.facts().default_model
    model_server.parse_source(source, "model")
    architecture = _str(context, "model_architecture")
    if architecture is not None:
        sizing.get_model(architecture, "model_architecture")
    params = _str(context, "model_params")
    if params is not None:
        sizing.parse_count(params, "model_params", minimum=sizing.MIN_PARAMS, maximum=sizing.MAX_PARAMS)
    secret = _str(context, "model_token_secret")
    if secret is not None and not model_server.SECRET_ARN.fullmatch(secret):
        raise ConfigurationError(f"model_token_secret ({shown(secret)}) must be the complete ARN of a Secrets Manager "
                                 "secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>); "
                                 "never the token itself")
    return ModelSettings(source, architecture, params, secret)


def _opt_in_packs() -> tuple[str, ...]:
    return tuple(pack.option for pack in nag_packs.packs().values() if pack.option is not None)


def _shared_storage_gib(context: Mapping[str, Any]) -> int | None:
    gib = _int(context, "shared_storage_gib", 1200, MAX_SHARED_STORAGE_GIB)
    problem = fsx.capacity_problem(fsx.BUILT_DEPLOYMENT_TYPES[0], gib) if gib is not None else None
    if problem is not None:
        raise ConfigurationError(f"shared_storage_gib ({gib}) {problem}")
    return gib


def _stacks(context: Mapping[str, Any]) -> tuple[str, ...]:
    allowed = ("TrainingStack", "InferenceStack")
    return _names(context, "stacks", allowed) or allowed


def _names(context: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """A comma-separated (or listed) choice of ``allowed`` names, in ``allowed``'s order; None when not given."""
    value = context.get(key)
    if value is None:
        return None
    names = [n.strip() for n in (value if isinstance(value, (list, tuple)) else str(value).split(",")) if n.strip()]
    choices = " and/or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 2 else allowed)
    for name in names:
        if name not in allowed:
            raise ConfigurationError(f"{key} ({shown(name)}) must be {choices}")
    if not names:
        raise ConfigurationError(f"{key} ({shown(value)}) must name {choices}")
    return tuple(n for n in allowed if n in names)


def _choice(context: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = _str(context, key) or default
    if value not in allowed:
        raise ConfigurationError(f"{key} ({shown(value)}) must be one of {', '.join(allowed)}")
    return value
