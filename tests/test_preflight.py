"""`mlcdk preflight` and mlcdk.aws.preflight: quota, offering, reservations and AMI, without AWS or the internet.

What each AWS API runs against, and why:
- Service Quotas: botocore's Stubber. moto 5.2.5 models only the `vpc` service there; GetServiceQuota for ec2
  answers NoSuchResourceException for every code.
- EC2 offerings: moto, which bundles a real DescribeInstanceTypeOfferings snapshot by AZ ID.
- EC2 Capacity Reservations and Capacity Blocks: botocore's Stubber. moto 5.2.5 implements neither
  DescribeCapacityReservations nor CreateCapacityReservation (NotImplementedError), so it cannot hold a
  reservation, a Capacity Block (ReservationType capacity-block) or an expired state.
- SSM: moto. It preloads the ECS-optimized AMI parameters (the Batch engine's AMIs) but no Deep Learning AMI
  parameter, and refuses to create any /aws/ name, so a DLAMI parameter is always missing there.

Expected values are literals from the sources (quota codes from quotas.json's pages, vCPU counts from the EC2
API, AZ IDs from moto's snapshot), not recomputed with the code under test.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from mlcdk.aws import preflight as pf
from mlcdk.cli import app
from mlcdk.cli import preflight as cli_preflight
from mlcdk.errors import ConfigurationError
from mlcdk.presets import catalog
from tests.harness import cdk_modules_loaded_by

REGION = "us-east-1"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
runner = CliRunner()


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    """moto for everything, with dummy credentials."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    for var in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def no_credentials(monkeypatch):
    """No AWS credentials anywhere: no variables, no files, no instance metadata."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


class Session:
    """The two methods of boto3.Session that preflight uses: the given (stubbed) clients, moto's for the rest."""

    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def client(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        return self.clients.get(service.replace("-", "_")) or boto3.client(service, region_name=region_name,
                                                                            config=config)

    def get_credentials(self) -> Any:
        return boto3.Session().get_credentials()


def quotas(*values: tuple[str, float]) -> Any:
    """A Service Quotas client whose GetServiceQuota answers each (code, value) in turn, checking the code."""
    client, stub = stubbed("service-quotas")
    for code, value in values:
        stub.add_response("get_service_quota", {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
                          {"ServiceCode": "ec2", "QuotaCode": code})
    stub.activate()
    return client


def reservation(**fields: Any) -> dict[str, Any]:
    """A DescribeCapacityReservations entry: an active ODCR for 4 trn1.32xlarge in use1-az4, 2 of them free."""
    return {"CapacityReservationId": "cr-0123456789abcdef0", "InstanceType": "trn1.32xlarge",
            "InstancePlatform": "Linux/UNIX", "AvailabilityZone": "us-east-1b", "AvailabilityZoneId": "use1-az4",
            "TotalInstanceCount": 4, "AvailableInstanceCount": 2, "State": "active", "ReservationType": "default",
            "StartDate": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc), **fields}


def ec2_with(*reservations: dict[str, Any] | str, offerings: tuple[str, ...] | None = None) -> Any:
    """An EC2 client stubbed for DescribeCapacityReservations (one call per ID; a string is an unknown ID)
    and, when ``offerings`` is given, first for DescribeInstanceTypeOfferings of trn1.32xlarge."""
    client, stub = stubbed("ec2")
    if offerings is not None:
        stub.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": [
            {"InstanceType": "trn1.32xlarge", "LocationType": "availability-zone-id", "Location": zone}
            for zone in offerings]}, {"LocationType": "availability-zone-id",
                                      "Filters": [{"Name": "instance-type", "Values": ["trn1.32xlarge"]}]})
    for entry in reservations:
        if isinstance(entry, str):
            stub.add_client_error("describe_capacity_reservations", "InvalidCapacityReservationId.NotFound",
                                  f"The capacity reservation ID '{entry}' does not exist",
                                  expected_params={"CapacityReservationIds": [entry]})
        else:
            stub.add_response("describe_capacity_reservations", {"CapacityReservations": [entry]},
                              {"CapacityReservationIds": [entry["CapacityReservationId"]]})
    stub.activate()
    return client


def request(**kwargs: Any) -> pf.Request:
    return pf.Request.create(pf.Arguments(**{"region": REGION, "instance_type": "trn1.32xlarge", "nodes": 2, **kwargs}))


def by_name(report: pf.PreflightReport) -> dict[str, pf.Check]:
    return {c.name: c for c in report.checks}


# --------------------------------------------------------------------------------------------
# Quotas (Stubber)
# --------------------------------------------------------------------------------------------


def test_trn_quota_of_zero_fails_with_the_increase_request():
    check = pf.check_quota(quotas(("L-2C3B7624", 0.0)), request(nodes=2))
    assert check.status == "fail"
    assert check.detail.startswith("Running On-Demand Trn instances (L-2C3B7624): 0 vCPUs in us-east-1")
    assert "2 × trn1.32xlarge need 256 vCPUs (2 × 128)" in check.detail
    assert check.fix.startswith("aws service-quotas request-service-quota-increase --service-code ec2 "
                                "--quota-code L-2C3B7624 --desired-value 256 --region us-east-1")
    assert "servicequotas/home/services/ec2/quotas/L-2C3B7624" in check.fix


def test_p_quota_that_covers_every_node_passes():
    check = pf.check_quota(quotas(("L-417A185B", 384.0)), request(instance_type="p5.48xlarge", nodes=2))
    assert (check.status, check.source) == ("pass", "aws")
    assert "Running On-Demand P instances (L-417A185B): 384 vCPUs" in check.detail and "need 384 vCPUs" in check.detail


def test_one_vcpu_short_fails():
    check = pf.check_quota(quotas(("L-417A185B", 383.0)), request(instance_type="p5.48xlarge", nodes=2))
    assert check.status == "fail" and "--desired-value 384" in check.fix


@pytest.mark.parametrize(("instance_type", "code", "name"), [
    ("trn1.32xlarge", "L-6B0D517C", "All Trn Spot Instance Requests"),
    ("p5.48xlarge", "L-7212CCBC", "All P Spot Instance Requests"),
    ("g6e.xlarge", "L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("inf2.48xlarge", "L-B5D1601B", "All Inf Spot Instance Requests"),
])
def test_spot_checks_the_spot_quota(instance_type, code, name):
    check = pf.check_quota(quotas((code, 0.0)), request(instance_type=instance_type, nodes=1, spot=True))
    assert check.status == "fail" and check.detail.startswith(f"{name} ({code})")


#: Every family of the catalog and its on-demand / spot quota codes, written out from the EC2 User Guide's quota
#: names and the console codes (an oracle apart from quotas.json's prefix table).
EXPECTED_QUOTAS = {
    **{family: ("L-1216C47A", "L-34B43A08") for family in ("c6i", "c7g", "c7gn", "c7i", "m5a")},
    "dl1": ("L-6E869C2A", "L-85EED4F7"), "dl2q": ("L-6E869C2A", "L-85EED4F7"), "f2": ("L-74FC7D96", "L-88CF9481"),
    **{family: ("L-DB2E81BA", "L-3819A6DF") for family in
       ("g3", "g3s", "g4ad", "g4dn", "g5", "g5g", "g6", "g6e", "g6f", "g7", "g7e", "gr6", "gr6f", "vt1")},
    "inf1": ("L-1945791B", "L-B5D1601B"), "inf2": ("L-1945791B", "L-B5D1601B"),
    **{family: ("L-417A185B", "L-7212CCBC") for family in
       ("p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300")},
    **{family: ("L-2C3B7624", "L-6B0D517C") for family in ("trn1", "trn1n", "trn2", "trn2u")},
}


def test_every_catalog_family_has_its_quota():
    families = {spec.family: spec.instance_type for spec in catalog.default_catalog()}
    new = sorted(set(families) - set(EXPECTED_QUOTAS))
    assert not new, f"catalog families {new} need their quota checked in quotas.json, then listed here"
    for family, instance_type in families.items():
        found = (pf.quota_for(instance_type).code, pf.quota_for(instance_type, spot=True).code)
        assert found == EXPECTED_QUOTAS[family], family


def test_family_without_a_quota_class_is_unknown_not_guessed():
    assert pf.quota_for("x2iedn.xlarge") is None and pf.quota_for("hpc7g.16xlarge") is None
    assert pf.quota_for("u-6tb1.metal") is None and pf.quota_for("mac2.metal") is None


def test_no_applied_quota_falls_back_to_the_aws_default():
    client, stub = stubbed("service-quotas")
    stub.add_client_error("get_service_quota", "NoSuchResourceException", "The request failed because the "
                          "specified service does not exist.", expected_params={"ServiceCode": "ec2",
                                                                               "QuotaCode": "L-2C3B7624"})
    stub.add_response("get_aws_default_service_quota", {"Quota": {"QuotaCode": "L-2C3B7624", "Value": 0.0}},
                      {"ServiceCode": "ec2", "QuotaCode": "L-2C3B7624"})
    stub.activate()
    check = pf.check_quota(client, request(nodes=1))
    assert check.status == "fail" and "(AWS default: GetServiceQuota has no applied value" in check.detail
    assert "--quota-code L-2C3B7624 --desired-value 128" in check.fix


def test_quota_unknown_to_service_quotas_is_unknown():
    client, stub = stubbed("service-quotas")
    for operation in ("get_service_quota", "get_aws_default_service_quota"):
        stub.add_client_error(operation, "NoSuchResourceException", "no such quota")
    stub.activate()
    check = pf.check_quota(client, request(nodes=1))
    assert check.status == "unknown"
    assert check.detail.startswith("could not run: L-2C3B7624 is neither applied to this account nor known")


def test_access_denied_is_unknown_and_names_the_iam_action():
    client, stub = stubbed("service-quotas")
    stub.add_client_error("get_service_quota", "AccessDeniedException", "User is not authorized")
    stub.activate()
    check = pf.check_quota(client, request(nodes=1))
    assert check.status == "unknown"
    assert check.detail == ("could not run: AccessDeniedException: User is not authorized "
                            "(it needs servicequotas:GetServiceQuota)")
    assert check.fix == "grant servicequotas:GetServiceQuota to your identity"


# --------------------------------------------------------------------------------------------
# Offerings (moto's DescribeInstanceTypeOfferings snapshot)
# --------------------------------------------------------------------------------------------


def test_offered_in_the_requested_az_id_passes(aws):
    check = pf.check_offering(boto3.client("ec2"), request(availability_zone_ids=["use1-az4"]))
    assert (check.status, check.source) == ("pass", "aws")
    assert check.detail == "trn1.32xlarge is offered in use1-az4"


def test_not_offered_in_the_requested_az_id_fails_and_names_the_ones_that_offer_it(aws):
    check = pf.check_offering(boto3.client("ec2"), request(availability_zone_ids=["use1-az4", "use1-az1"]))
    assert check.status == "fail"
    assert check.detail == ("trn1.32xlarge is not offered in use1-az1; in us-east-1 it is offered in "
                            "use1-az4, use1-az5, use1-az6")
    assert check.fix == "use AZ IDs among use1-az4, use1-az5, use1-az6"


def test_not_offered_in_the_region_fails_and_names_regions_that_offer_it(aws):
    check = pf.check_offering(boto3.client("ec2", region_name="eu-west-1"), request(region="eu-west-1"))
    assert check.status == "fail" and check.detail == "trn1.32xlarge is not offered in eu-west-1"
    assert "us-east-1" in check.fix and "us-west-2" in check.fix


def test_offline_offering_answers_from_the_catalog_and_says_so():
    check = pf.check_offering(None, request(availability_zone_ids=["use1-az6"]))
    assert (check.status, check.source) == ("pass", "catalog")
    assert "catalog snapshot, offerings as of" in check.detail and "no AWS credentials" in check.detail


# --------------------------------------------------------------------------------------------
# Reservations and Capacity Blocks (Stubber: moto has no Capacity Reservation API)
# --------------------------------------------------------------------------------------------


def test_moto_still_lacks_capacity_reservations(aws):
    """If this starts failing, moto models reservations and the Stubber tests below can move to moto."""
    with pytest.raises(NotImplementedError):
        boto3.client("ec2").describe_capacity_reservations(CapacityReservationIds=["cr-0123456789abcdef0"])


def test_reservation_with_enough_free_instances_passes():
    checks = pf.check_reservations(ec2_with(reservation()), request(reservation_ids=["cr-0123456789abcdef0"],
                                                                    availability_zone_ids=["use1-az4"]), NOW)
    assert [(c.name, c.status) for c in checks] == [("reservation cr-0123456789abcdef0", "pass"),
                                                    ("reserved capacity", "pass")]
    assert checks[0].detail == "active Capacity Reservation for trn1.32xlarge in use1-az4"
    assert checks[1].detail == "2 instance(s) free (cr-0123456789abcdef0 2 of 4); 2 needed"


def test_reservation_with_too_few_free_instances_fails():
    checks = pf.check_reservations(ec2_with(reservation(AvailableInstanceCount=1)),
                                   request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert checks[0].status == "pass"
    assert (checks[1].status, checks[1].detail) == ("fail", "1 instance(s) free (cr-0123456789abcdef0 1 of 4); "
                                                            "2 needed")
    assert "modify-capacity-reservation" in checks[1].fix


def test_two_reservations_add_up():
    second = reservation(CapacityReservationId="cr-0fedcba9876543210", AvailableInstanceCount=1)
    checks = pf.check_reservations(ec2_with(reservation(AvailableInstanceCount=1), second),
                                   request(reservation_ids=["cr-0123456789abcdef0", "cr-0fedcba9876543210"]), NOW)
    assert [c.status for c in checks] == ["pass", "pass", "pass"]
    assert checks[2].detail == ("2 instance(s) free (cr-0123456789abcdef0 1 of 4, cr-0fedcba9876543210 1 of 4); "
                                "2 needed")


def test_reservation_for_another_type_fails():
    [check] = pf.check_reservations(ec2_with(reservation(InstanceType="p5.48xlarge")),
                                    request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail" and "it is for p5.48xlarge, not trn1.32xlarge" in check.detail


def test_reservation_in_another_az_fails():
    wanted = request(reservation_ids=["cr-0123456789abcdef0"], availability_zone_ids=["use1-az4"])
    [check] = pf.check_reservations(ec2_with(reservation(AvailabilityZoneId="use1-az5")), wanted, NOW)
    assert check.status == "fail" and "it is in use1-az5, not in use1-az4" in check.detail
    assert check.fix == "pin the cluster to use1-az5"


def test_windows_reservation_fails():
    [check] = pf.check_reservations(ec2_with(reservation(InstancePlatform="Windows")),
                                    request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail" and "it is for Windows instances" in check.detail


def test_missing_reservation_fails():
    [check] = pf.check_reservations(ec2_with("cr-0000000000000000a"), request(reservation_ids=["cr-0000000000000000a"]),
                                    NOW)
    assert (check.name, check.status) == ("reservation cr-0000000000000000a", "fail")
    assert check.detail == "cr-0000000000000000a does not exist in us-east-1 for this account"


def test_expired_capacity_block_fails_with_how_to_buy_another():
    block = reservation(ReservationType="capacity-block", State="expired", AvailableInstanceCount=0,
                        EndDate=dt.datetime(2026, 11, 20, 11, 30, tzinfo=dt.timezone.utc))
    [check] = pf.check_reservations(ec2_with(block), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail"
    assert check.detail == ("Capacity Block cr-0123456789abcdef0: it ended at 2026-11-20 11:30 UTC (state expired)")
    assert check.fix.startswith("buy a new Capacity Block (aws ec2 describe-capacity-block-offerings "
                                "--instance-type trn1.32xlarge --instance-count 2")


def test_capacity_block_past_its_end_date_fails_even_while_still_marked_active():
    block = reservation(ReservationType="capacity-block", EndDate=NOW - dt.timedelta(minutes=1))
    [check] = pf.check_reservations(ec2_with(block), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail" and "it ended at 2026-12-01 11:59 UTC (state active)" in check.detail


def test_capacity_block_in_its_last_30_minutes_fails():
    block = reservation(ReservationType="capacity-block", EndDate=NOW + dt.timedelta(minutes=25))
    [check] = pf.check_reservations(ec2_with(block), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail" and "terminates its instances from 30 minutes before the end" in check.detail


def test_active_capacity_block_passes_and_shows_its_end():
    block = reservation(ReservationType="capacity-block", EndDate=NOW + dt.timedelta(days=2))
    checks = pf.check_reservations(ec2_with(block), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert checks[0].detail == "active Capacity Block for trn1.32xlarge in use1-az4 until 2026-12-03 12:00 UTC"
    assert [c.status for c in checks] == ["pass", "pass"]


def test_scheduled_block_passes_with_all_its_instances_free():
    """A cluster may be deployed before its block starts (Auto Scaling and PCS guides: scheduled or active)."""
    block = reservation(ReservationType="capacity-block", State="scheduled", AvailableInstanceCount=0,
                        StartDate=dt.datetime(2026, 12, 5, 11, 30, tzinfo=dt.timezone.utc),
                        EndDate=dt.datetime(2026, 12, 6, 11, 30, tzinfo=dt.timezone.utc))
    checks = pf.check_reservations(ec2_with(block), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert [c.status for c in checks] == ["pass", "pass"]
    assert checks[0].detail == ("scheduled Capacity Block for trn1.32xlarge in use1-az4 from 2026-12-05 11:30 UTC "
                                "until 2026-12-06 11:30 UTC")
    assert checks[1].detail == "4 instance(s) free (cr-0123456789abcdef0 4 of 4); 2 needed"


def test_cancelled_reservation_fails():
    [check] = pf.check_reservations(ec2_with(reservation(State="cancelled")),
                                    request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "fail" and "its state is cancelled; it must be active or scheduled" in check.detail


def test_reservation_access_denied_is_unknown():
    client, stub = stubbed("ec2")
    stub.add_client_error("describe_capacity_reservations", "UnauthorizedOperation", "You are not authorized")
    stub.activate()
    [check] = pf.check_reservations(client, request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "unknown" and "(it needs ec2:DescribeCapacityReservations)" in check.detail


def test_unreadable_answer_is_unknown_not_a_crash():
    """moto_server answers HTTP 500 with an HTML page for DescribeCapacityReservations; botocore cannot parse it."""
    from botocore.parsers import ResponseParserError

    class Emulator:
        def describe_capacity_reservations(self, **_: Any) -> Any:
            raise ResponseParserError("Unable to parse response (syntax error: line 1, column 0), invalid XML "
                                      "received.\nb'<!doctype html>...'")

    [check] = pf.check_reservations(Emulator(), request(reservation_ids=["cr-0123456789abcdef0"]), NOW)
    assert check.status == "unknown" and check.detail == (
        "could not run: AWS's answer could not be read (Unable to parse response (syntax error: line 1, column 0), "
        "invalid XML received.)")


# --------------------------------------------------------------------------------------------
# AMI parameters (moto's SSM)
# --------------------------------------------------------------------------------------------


def test_batch_ami_parameter_resolves(aws):
    check = pf.check_ami(boto3.client("ssm"), request(engine="batch"))
    assert check.status == "pass"
    assert check.detail.startswith("/aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/recommended/image_id "
                                   "(ecs-neuron) resolves to ami-")


def test_missing_ami_parameter_fails(aws):
    ssm = boto3.client("ssm")
    name = "/aws/service/neuron/dlami/multi-framework/ubuntu-22.04/latest/image_id"
    with pytest.raises(ssm.exceptions.ClientError, match="reserved parameter name"):
        ssm.put_parameter(Name=name, Value="ami-0123456789abcdef0", Type="String")  # moto: no /aws/ names
    check = pf.check_ami(ssm, request(engine="nodes"))
    assert (check.status, check.detail) == ("fail", f"{name} (neuron-dlami) does not resolve in us-east-1")


def test_type_without_a_catalog_ami_is_unknown():
    check = pf.check_ami(None, request(instance_type="dl2q.24xlarge", nodes=1))
    assert check.status == "unknown" and "no catalog AMI runs dl2q.24xlarge" in check.detail


# --------------------------------------------------------------------------------------------
# The whole pre-flight
# --------------------------------------------------------------------------------------------


def test_preflight_with_moto_and_a_stubbed_quota(aws):
    session = Session(service_quotas=quotas(("L-2C3B7624", 512.0)))
    report = pf.preflight(region=REGION, instance_type="trn1.32xlarge", nodes=4, availability_zone_ids=["use1-az4"],
                          session=session)
    assert [(c.name, c.status) for c in report.checks] == [("quota", "pass"), ("offering", "pass"), ("ami", "pass")]
    assert (report.result, report.exit_code) == ("pass", 0)


def test_preflight_with_a_reservation(aws):
    session = Session(service_quotas=quotas(("L-2C3B7624", 0.0)), ec2=ec2_with(reservation(), offerings=(
        "use1-az4", "use1-az5", "use1-az6")))
    report = pf.run(request(reservation_ids=["cr-0123456789abcdef0"], availability_zone_ids=["use1-az4"]), session,
                    now=NOW)
    assert [(c.name, c.status) for c in report.checks] == [
        ("quota", "fail"), ("offering", "pass"), ("reservation cr-0123456789abcdef0", "pass"),
        ("reserved capacity", "pass"), ("ami", "pass")]
    assert report.exit_code == 1 and [c.name for c in report.failed] == ["quota"]


def test_no_credentials_every_aws_check_is_unknown(no_credentials):
    report = pf.preflight(region=REGION, instance_type="trn1.32xlarge", nodes=2,
                          reservation_ids=["cr-0123456789abcdef0"], availability_zone_ids=["use1-az4"])
    assert [(c.name, c.status, c.source) for c in report.checks] == [
        ("quota", "unknown", None), ("offering", "pass", "catalog"),
        ("reservation cr-0123456789abcdef0", "unknown", None), ("ami", "unknown", None)]
    assert all(c.detail == "could not run: no AWS credentials" for c in report.not_run)
    assert (report.result, report.exit_code) == ("incomplete", 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nodes": 0}, r"nodes \(0\) must be a whole number, at least 1"),
    ({"instance_type": "trn1.32xlarg"}, "did you mean 'trn1.32xlarge'"),
    ({"region": "us-east-9"}, "unknown region 'us-east-9'"),
    ({"reservation_ids": ["cr-0123"]}, "'cr-0123' is not a Capacity Reservation ID"),
    ({"reservation_ids": ["cr-0123456789ABCDEF0"]}, "17 lowercase hex digits"),
    ({"availability_zone_ids": ["us-east-1a"]}, "'us-east-1a' is not an AZ ID"),
    ({"availability_zone_ids": ["usw2-az1"]}, "usw2-az1 is not in us-east-1; its AZ IDs start with use1-"),
    ({"engine": "slurm"}, "unknown engine 'slurm'; allowed: batch, nodes"),
    ({"spot": True, "reservation_ids": ["cr-0123456789abcdef0"]}, "spot instances cannot use a Capacity Reservation"),
])
def test_bad_arguments_raise_configuration_error(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        request(**kwargs)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["preflight", "--region", REGION, *args])


def test_cli_exits_0_when_every_check_passes(aws, monkeypatch):
    monkeypatch.setattr(cli_preflight, "_session", lambda: Session(service_quotas=quotas(("L-2C3B7624", 256.0))))
    result = invoke("--instance-type", "trn1.32xlarge", "--nodes", "2", "--availability-zone-id", "use1-az4")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("PASS     quota     Running On-Demand Trn instances (L-2C3B7624): 256 vCPUs")
    assert lines[1] == "PASS     offering  trn1.32xlarge is offered in use1-az4"
    assert lines[2].startswith("PASS     ami       /aws/service/ecs/optimized-ami/amazon-linux-2023/neuron/")
    assert lines[-1] == "2 × trn1.32xlarge (on-demand) in us-east-1: every check passed."


def test_cli_exits_1_and_prints_the_fix_when_the_quota_is_zero(aws, monkeypatch):
    monkeypatch.setattr(cli_preflight, "_session", lambda: Session(service_quotas=quotas(("L-7212CCBC", 0.0))))
    result = invoke("--instance-type", "p5.48xlarge", "--nodes", "2", "--spot")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[0].startswith("FAIL     quota     All P Spot Instance Requests (L-7212CCBC): "
                                                    "0 vCPUs in us-east-1")
    assert ("  quota: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-7212CCBC "
            "--desired-value 384 --region us-east-1") in result.output
    assert result.output.splitlines()[-1] == "2 × p5.48xlarge (spot) in us-east-1: 1 check(s) failed."


def test_cli_expired_block_exits_1(aws, monkeypatch):
    block = reservation(ReservationType="capacity-block", State="expired",
                        EndDate=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    monkeypatch.setattr(cli_preflight, "_session", lambda: Session(
        service_quotas=quotas(("L-2C3B7624", 256.0)), ec2=ec2_with(block, offerings=("use1-az4",))))
    result = invoke("--instance-type", "trn1.32xlarge", "--nodes", "2", "--reservation-id", "cr-0123456789abcdef0")
    assert result.exit_code == 1, result.output
    assert ("FAIL     reservation cr-0123456789abcdef0  Capacity Block cr-0123456789abcdef0: it ended at "
            "2025-01-01 00:00 UTC (state expired)") in result.output


def test_cli_json_report(aws, monkeypatch):
    monkeypatch.setattr(cli_preflight, "_session", lambda: Session(service_quotas=quotas(("L-2C3B7624", 0.0))))
    result = invoke("--instance-type", "trn1.32xlarge", "--nodes", "1", "--engine", "nodes", "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert {k: document[k] for k in ("region", "instance_type", "nodes", "spot", "engine", "result", "exit_code")} == {
        "region": "us-east-1", "instance_type": "trn1.32xlarge", "nodes": 1, "spot": False, "engine": "nodes",
        "result": "fail", "exit_code": 1}
    assert document["reservation_ids"] == [] and document["availability_zone_ids"] == []
    checks = {c["name"]: c for c in document["checks"]}
    assert set(checks) == {"quota", "offering", "ami"}
    assert set(checks["quota"]) == {"name", "status", "detail", "fix", "source"}
    assert [checks[name]["status"] for name in ("quota", "offering", "ami")] == ["fail", "pass", "fail"]
    assert "--desired-value 128" in checks["quota"]["fix"]


def test_cli_without_credentials_exits_0_and_says_what_did_not_run(no_credentials):
    result = invoke("--instance-type", "trn1.32xlarge", "--nodes", "2")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "UNKNOWN  quota     could not run: no AWS credentials" in result.output
    assert "Could not run: quota, ami (no result; not a failure)." in result.output
    assert result.output.splitlines()[-1] == ("2 × trn1.32xlarge (on-demand) in us-east-1: no check failed, some "
                                              "could not run.")


@pytest.mark.parametrize(("args", "line"), [
    (["--instance-type", "trn1.32xlarge", "--nodes", "0"], "error: --nodes (0) must be a whole number, at least 1"),
    (["--instance-type", "trn1.32xlarg", "--nodes", "1"],
     "error: --instance-type: unknown instance type 'trn1.32xlarg'; did you mean 'trn1.32xlarge' or 'trn1n.32xlarge' "
     "or 'trn1.2xlarge'?"),
    (["--instance-type", "trn1.32xlarge", "--nodes", "1", "--reservation-id", "cr-123"],
     "error: --reservation-id: 'cr-123' is not a Capacity Reservation ID; allowed: 'cr-' and 17 lowercase hex "
     "digits, e.g. cr-0123456789abcdef0"),
    (["--instance-type", "trn1.32xlarge", "--nodes", "1", "--availability-zone-id", "use1az4"],
     "error: --availability-zone-id: 'use1az4' is not an AZ ID; allowed: IDs such as use1-az1 (not AZ names such "
     "as us-east-1a)"),
])
def test_cli_usage_errors_exit_2_with_one_line(no_credentials, args, line):
    result = invoke(*args)
    assert result.exit_code == 2
    assert [row for row in result.output.splitlines() if row.strip()] == [line]


def test_cli_bad_region_exits_2():
    result = runner.invoke(app, ["preflight", "--region", "us-east-9", "--instance-type", "trn1.32xlarge",
                                 "--nodes", "1"])
    assert result.exit_code == 2 and result.output.startswith("error: --region: unknown region 'us-east-9'")


def test_preflight_never_imports_aws_cdk():
    code = ("import os\nos.environ.update(AWS_SHARED_CREDENTIALS_FILE='/dev/null', AWS_CONFIG_FILE='/dev/null',"
            " AWS_EC2_METADATA_DISABLED='true')\n"
            "for k in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE'): os.environ.pop(k, None)\n"
            "from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            "r = CliRunner().invoke(app, ['preflight', '--region', 'us-east-1', '--instance-type', 'trn1.32xlarge',"
            " '--nodes', '1'])\nassert r.exit_code == 0, r.output\n")
    assert cdk_modules_loaded_by(code) == []
