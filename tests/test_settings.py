"""Context flags: every bad value is a ConfigurationError naming the flag, the value and what is allowed."""
from __future__ import annotations

import pytest

from mlcdk import ConfigurationError
from mlcdk.presets import catalog
from mlcdk.settings import MAX_NETWORK_AZS, read_settings


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"nodes": "four"}, r"nodes \('four'\) must be a whole number from 1 to 512"),
        ({"nodes": "0"}, r"nodes \(0\) must be from 1 to 512"),
        ({"nodes": -3}, r"nodes \(-3\) must be from 1 to 512"),
        ({"nodes": "100000"}, r"nodes \(100000\) must be from 1 to 512"),
        ({"nodes": True}, r"nodes \(True\) must be a whole number"),
        ({"min_capacity": "3", "max_capacity": "2"}, r"min_capacity \(3\) must not exceed max_capacity \(2\)"),
        ({"min_capacity": "-1"}, r"min_capacity \(-1\) must be from 0 to 1000"),
        ({"max_capacity": "0"}, r"max_capacity \(0\) must be from 1 to 1000"),
        ({"instance_type": "trn1.32xlarg"}, r"instance_type: unknown instance type 'trn1.32xlarg'; did you mean 'trn1.32xlarge'"),
        ({"inference_instance_type": "inf3.xlarge"}, r"inference_instance_type: unknown instance type 'inf3.xlarge'"),
        ({"preset": "llm-pretrain-trainum"}, r"preset: unknown preset 'llm-pretrain-trainum'; did you mean 'llm-pretrain-trainium'"),
        ({"preset": "serving-nvidia"}, r"preset \('serving-nvidia'\) is an inference preset; preset needs a training"),
        ({"inference_preset": "llm-pretrain-nvidia"}, r"inference_preset \('llm-pretrain-nvidia'\) is a training preset"),
        ({"region": "us-wets-2"}, r"region: unknown region 'us-wets-2'; did you mean 'us-west-2'"),
        ({"region": "eu-west-1"}, r"instance_type: trn1.32xlarge is not offered in eu-west-1; it is offered in ap-south-1, .*us-west-2"),
        ({"region": "us-east-1", "account": "12345"}, r"account \('12345'\) must be a 12-digit AWS account ID"),
        ({"alarm_email": "ml-team"}, r"alarm_email \('ml-team'\) is not an e-mail address"),
        ({"alarm_email": "a@example.com,b@"}, r"alarm_email \('b@'\) is not an e-mail address"),
        ({"preset": ""}, r"preset \(''\) must be a non-empty string"),
        ({"preset_file": "/nonexistent/presets.yaml"}, r"/nonexistent/presets.yaml: cannot read"),
        ({"removal_policy": "delete"}, r"removal_policy \('delete'\) must be one of retain, destroy"),
        ({"emulator": "yes"}, r"emulator \('yes'\) must be true or false"),
        ({"stacks": "TrainStack"}, r"stacks \('TrainStack'\) must be TrainingStack and/or InferenceStack"),
        ({"purchase_option": "reserved"}, r"purchase_option \('reserved'\) must be one of on-demand, spot, mixed"),
        ({"inference_purchase_option": "cheap"}, r"inference_purchase_option \('cheap'\) must be one of"),
        ({"engine": "slurm"}, r"engine \('slurm'\) must be one of batch, nodes"),
        ({"inference_engine": "eks"}, r"inference_engine \('eks'\) must be one of ecs, nodes"),
        ({"inference_preset": "cpu-inference"}, r"inference_engine \('ecs'\): no vLLM Deep Learning Container serves "
                                                r"c7g.xlarge .* use -c inference_engine=nodes"),
        ({"model": "s3://My_Models/llama"}, r"model \('s3://My_Models/llama'\) is not an S3 URI"),
        ({"model": "meta llama/Llama-3"}, r"model \('meta llama/Llama-3'\) must be s3://"),
        ({"model_architecture": "llama-4"}, r"model_architecture: unknown model 'llama-4'"),
        ({"model_params": "7"}, r"model_params \('7'\) is under the minimum"),
        ({"model_token_secret": "hf_AbCdEf0123456789"}, r"model_token_secret \('hf_AbCdEf0123456789'\) must be the "
                                                        r"complete ARN of a Secrets Manager secret .*never the token"),
        ({"purchase_option": "spot"}, r"purchase_option \('spot'\) with -c engine='batch': AWS Batch runs multi-node "
                                      r"parallel jobs on on-demand capacity only"),
        ({"purchase_option": "mixed", "nodes": "1"}, r"purchase_option \('mixed'\) with -c engine='batch': a Batch "
                                                     r"compute environment is either spot or on-demand"),
    ],
)
def test_bad_context_is_a_configuration_error_naming_the_flag(context, message):
    with pytest.raises(ConfigurationError, match=message):
        read_settings(context)


#: What the CDK CLI puts in the app's environment when the AWS configuration names no region (checked by
#: tests/test_app.py::test_cdk_ls_lists_both_stacks_offline, which runs the real CLI with no AWS configuration).
CLI = {"CDK_DEFAULT_REGION": "us-east-1"}


def cli_settings(context: dict, environ: dict | None = None):
    """read_settings as `cdk synth` runs it: the CLI has set CDK_DEFAULT_REGION."""
    return read_settings(context, {**CLI, **(environ or {})})


def test_defaults_are_the_trainium_pretraining_and_inferentia2_serving_presets():
    settings = cli_settings({})
    assert (settings.training.instance_type, settings.training.nodes) == ("trn1.32xlarge", 2)
    assert (settings.inference.instance_type, settings.inference.min_capacity, settings.inference.max_capacity) == ("inf2.xlarge", 1, 4)
    assert (settings.region, settings.region_source) == ("us-east-1", "CDK_DEFAULT_REGION")
    assert settings.training.availability_zone_ids == ("use1-az4", "use1-az5", "use1-az6")  # the catalog's offerings


# --------------------------------------------------------------------------------------------
# Region resolution: -c region, else CDK_DEFAULT_REGION, else the AWS configuration (botocore, offline)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def aws_config(tmp_path, monkeypatch):
    """An AWS config file that botocore reads (the real botocore; nothing else is stubbed)."""
    path = tmp_path / "config"
    path.write_text("[default]\nregion = us-west-2\n\n[profile ml]\nregion = us-east-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    return path


def test_the_context_flag_comes_first_then_cdk_default_region_then_the_aws_configuration(aws_config, monkeypatch):
    assert read_settings({"region": "ap-south-1"}, CLI).region == "ap-south-1"
    assert (read_settings({}, CLI).region, read_settings({}, CLI).region_source) == ("us-east-1", "CDK_DEFAULT_REGION")
    from_config = read_settings({}, {})
    assert (from_config.region, from_config.region_source) == ("us-west-2", "the AWS configuration")
    assert from_config.training.availability_zone_ids == ("usw2-az1", "usw2-az4")  # trn1.32xlarge's in us-west-2
    monkeypatch.setenv("AWS_PROFILE", "ml")
    assert read_settings({}, {}).region == "us-east-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert read_settings({"stacks": "InferenceStack"}, {}).region == "eu-north-1"


def test_no_region_anywhere_is_refused_in_one_line_after_the_other_flags():
    with pytest.raises(ConfigurationError) as error:
        read_settings({}, {})
    assert str(error.value) == ("region: none given and none configured; pass -c region=REGION, set CDK_DEFAULT_REGION, "
                                "or configure one for the AWS CLI (aws configure set region REGION): the stacks pin their "
                                "subnets to the AZ IDs of that region that offer the instance type")
    with pytest.raises(ConfigurationError, match=r"nodes \('x'\)"):  # a typo is reported before the missing region
        read_settings({"nodes": "x"}, {})


def test_a_region_from_the_environment_is_checked_and_named_by_its_source(aws_config, monkeypatch):
    with pytest.raises(ConfigurationError, match=r"CDK_DEFAULT_REGION: unknown region 'us-east-9'"):
        read_settings({}, {"CDK_DEFAULT_REGION": "us-east-9"})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "mars-1")
    with pytest.raises(ConfigurationError, match=r"the AWS configuration: unknown region 'mars-1'"):
        read_settings({}, {})
    monkeypatch.setenv("AWS_PROFILE", "missing")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match=r"region: the AWS configuration cannot be read"):
        read_settings({}, {})


def test_a_region_that_does_not_offer_the_type_is_refused_in_one_line():
    with pytest.raises(ConfigurationError) as error:
        read_settings({}, {"CDK_DEFAULT_REGION": "eu-west-1"})
    assert str(error.value).startswith("instance_type: trn1.32xlarge is not offered in eu-west-1; it is offered in ")
    assert "\n" not in str(error.value)


def test_the_inference_stack_serves_tinyllama_on_ecs_by_default_and_takes_a_model_and_its_token_by_flag():
    settings = cli_settings({})
    assert settings.inference_engine == "ecs" and settings.model.source == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbC123"
    chosen = cli_settings({"model": "meta-llama/Llama-3.1-8B-Instruct", "model_architecture": "llama-3.1-8b",
                            "model_token_secret": arn})
    assert (chosen.model.source, chosen.model.architecture, chosen.model.token_secret_arn) == (
        "meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", arn)
    assert cli_settings({"inference_preset": "cpu-inference", "inference_engine": "nodes"}).inference_engine == "nodes"


def test_explicit_flags_override_the_preset():
    settings = cli_settings({"preset": "llm-pretrain-nvidia", "instance_type": "p5en.48xlarge", "nodes": "8"})
    assert (settings.training.preset.name, settings.training.instance_type, settings.training.nodes) == (
        "llm-pretrain-nvidia", "p5en.48xlarge", 8)


def test_region_selects_offered_az_ids_from_the_catalog():
    settings = read_settings({"region": "us-east-1"})
    offered = catalog.get("trn1.32xlarge").offered_azs("us-east-1")
    assert settings.training.availability_zone_ids == offered[:MAX_NETWORK_AZS]
    assert set(settings.inference.availability_zone_ids) <= set(catalog.get("inf2.xlarge").offered_azs("us-east-1"))


def test_account_comes_from_the_flag_else_the_environment():
    assert cli_settings({}).account is None
    assert cli_settings({}, {"CDK_DEFAULT_ACCOUNT": "123456789012"}).account == "123456789012"
    assert cli_settings({"account": "210987654321"}, {"CDK_DEFAULT_ACCOUNT": "123456789012"}).account == "210987654321"


def test_alarm_emails_are_split_and_trimmed():
    assert cli_settings({"alarm_email": "a@example.com, b@example.org"}).alarm_emails == ("a@example.com", "b@example.org")


def test_emulator_and_removal_policy_default_to_off_and_retain():
    settings = cli_settings({})
    assert (settings.emulator, settings.removal_policy) == (False, "retain")
    assert cli_settings({"emulator": "true", "removal_policy": "destroy"}).emulator is True


def test_only_the_selected_stack_is_checked_against_the_region():
    with pytest.raises(ConfigurationError, match="trn1.32xlarge is not offered in eu-west-1"):
        read_settings({"region": "eu-west-1"})
    settings = read_settings({"region": "eu-west-1", "stacks": "InferenceStack"})
    assert settings.stacks == ("InferenceStack",) and settings.inference.availability_zone_ids
    with pytest.raises(ConfigurationError, match=r"nodes \('x'\)"):  # unselected stacks still parse their flags
        read_settings({"region": "eu-west-1", "stacks": "InferenceStack", "nodes": "x"})


def test_engine_flag_defaults_to_batch_and_allows_single_node_spot():
    assert cli_settings({}).engine == "batch"
    assert cli_settings({"engine": "nodes"}).engine == "nodes"
    single = cli_settings({"purchase_option": "spot", "nodes": "1"})
    assert (single.engine, single.training.purchase_option, single.training.nodes) == ("batch", "spot", 1)
    # The rule concerns the training stack only: an inference-only app ignores it.
    assert cli_settings({"purchase_option": "spot", "stacks": "InferenceStack"}).stacks == ("InferenceStack",)


def test_purchase_option_flags_override_the_preset():
    settings = cli_settings({"purchase_option": "spot", "inference_purchase_option": "on-demand", "engine": "nodes"})
    assert (settings.training.purchase_option, settings.inference.purchase_option) == ("spot", "on-demand")
    assert cli_settings({}).inference.purchase_option == "mixed"


@pytest.mark.parametrize(("value", "message"), [
    ("3000", r"shared_storage_gib \(3000\) must be 1200, 2400 or a multiple of 2400 GiB for PERSISTENT_2"),
    ("600", r"shared_storage_gib \(600\) must be from 1200 to 2400000"),
    ("true", r"shared_storage_gib \('true'\) must be a whole number from 1200 to 2400000"),
    (True, r"shared_storage_gib \(True\) must be a whole number"),
    ("1.2T", r"shared_storage_gib \('1.2T'\) must be a whole number"),
])
def test_shared_storage_flag_takes_a_capacity_fsx_allows(value, message):
    with pytest.raises(ConfigurationError, match=message):
        read_settings({"shared_storage_gib": value})


def test_shared_storage_is_off_unless_the_flag_gives_a_capacity():
    assert cli_settings({}).shared_storage_gib is None  # FSx is billed while it exists: never on by default
    assert cli_settings({"shared_storage_gib": "1200"}).shared_storage_gib == 1200
    assert cli_settings({"shared_storage_gib": 4800}).shared_storage_gib == 4800
