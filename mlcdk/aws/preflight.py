"""Pre-flight: will a cluster of ``nodes`` × ``instance_type`` get capacity in ``region``? Asked before ``cdk deploy``.

Read-only calls with the user's own credentials (boto3), one check each:

- ``quota``: the vCPU quota that covers the type's family (Service Quotas ``GetServiceQuota``; on-demand and spot
  are separate quotas, listed with their sources in ``presets/data/quotas.json``) against nodes × vCPUs;
- ``offering``: the type is offered in the region and in the requested AZ IDs (``DescribeInstanceTypeOfferings``);
- ``reservation cr-...``: each named Capacity Reservation or Capacity Block exists, is active (or scheduled: a
  cluster may be deployed before its reservation starts, as AWS's Auto Scaling and PCS guides do), is for this type,
  platform and AZ, and does not end within the minutes before its end in which EC2 terminates instances;
  ``reserved capacity``: together they have ``nodes`` instances free (``DescribeCapacityReservations``);
- ``ami``: the SSM public parameter of the catalog's AMI for the type and engine resolves in the region.

Each check passes, fails (with what to do), or is unknown (it could not run: no credentials, access denied...).
Without credentials, or when AWS cannot be reached, ``offering`` answers from the bundled catalog snapshot and says
so (``source="catalog"``); a fail from the catalog is a real finding, as the catalog is generated from the same API.
No aws_cdk here; boto3 is imported on first use.

>>> report = preflight(region="us-east-1", instance_type="trn1.32xlarge", nodes=2)  # doctest: +SKIP
>>> [(c.name, c.status) for c in report.checks]  # doctest: +SKIP
[('quota', 'fail'), ('offering', 'pass'), ('ami', 'pass')]
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.errors import ConfigurationError, unknown_name
from mlcdk.presets import capacity_blocks, catalog, datafile, workloads

QUOTAS_FILE = catalog.DATA_DIR / "quotas.json"
AZ_ID = capacity_blocks.AZ_ID
#: The IAM action each check needs, named when AWS refuses it.
ACTIONS = {"quota": "servicequotas:GetServiceQuota", "offering": "ec2:DescribeInstanceTypeOfferings",
           "reservation": "ec2:DescribeCapacityReservations", "ami": "ssm:GetParameter"}
NO_CREDENTIALS = "no AWS credentials"
CREDENTIALS_FIX = "configure AWS credentials (aws configure, AWS_PROFILE or environment variables) and run again"
SERVICE_QUOTAS_CONSOLE = "https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/{code}"


@dataclass(frozen=True)
class Check:
    """One pre-flight answer."""

    name: str
    status: str  #: "pass", "fail" or "unknown" (the check could not run; ``detail`` says why)
    detail: str
    fix: str | None = None  #: what to do on a fail (or, for unknown, how to let the check run)
    source: str | None = None  #: where the answer comes from: "aws", or "catalog" when AWS could not be asked


@dataclass(frozen=True)
class PreflightReport:
    region: str
    instance_type: str
    nodes: int
    spot: bool
    engine: str
    reservation_ids: tuple[str, ...]
    availability_zone_ids: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def not_run(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "unknown")

    @property
    def result(self) -> str:
        """"fail" when a check failed, else "incomplete" when one could not run, else "pass"."""
        return "fail" if self.failed else "incomplete" if self.not_run else "pass"

    @property
    def exit_code(self) -> int:
        """1 when a check failed; 0 otherwise (checks that could not run do not fail the pre-flight)."""
        return 1 if self.failed else 0


# --------------------------------------------------------------------------------------------
# Quota classes (data/quotas.json)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    code: str
    name: str


@dataclass(frozen=True)
class QuotaClass:
    """The on-demand and spot vCPU quotas that cover a set of instance families."""

    name: str
    prefixes: tuple[str, ...]
    on_demand: Quota
    spot: Quota


@functools.lru_cache(maxsize=1)
def quota_classes(path: Path = QUOTAS_FILE) -> tuple[QuotaClass, ...]:
    """The quota classes of ``quotas.json``; ConfigurationError naming the file and entry when one is malformed."""
    with datafile.reading(path):
        raw = datafile.read_document(path)["classes"]
    classes = []
    for name, entry in sorted(raw.items()):
        try:
            quotas = [Quota(str(entry[kind]["code"]), str(entry[kind]["name"])) for kind in ("on_demand", "spot")]
            prefixes = tuple(str(p) for p in entry["prefixes"])
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}: classes[{name!r}]: missing or malformed field {exc}") from exc
        if not all(re.fullmatch(r"L-[0-9A-F]{8}", q.code) for q in quotas):
            raise ConfigurationError(f"{path}: classes[{name!r}]: quota codes look like L-1216C47A")
        classes.append(QuotaClass(name, prefixes, *quotas))
    return tuple(classes)


def family_prefix(instance_type: str) -> str:
    """The letters of an instance type's family before its first digit: trn1n.32xlarge -> trn, p6-b200... -> p."""
    return re.match(r"[a-z-]*?(?=[0-9]|$)", instance_type.split(".", 1)[0]).group(0)


def quota_for(instance_type: str, spot: bool = False) -> Quota | None:
    """The vCPU quota that covers ``instance_type`` (on spot when ``spot``), or None when quotas.json has none."""
    prefix = family_prefix(instance_type)
    for quota_class in quota_classes():
        if prefix in quota_class.prefixes:
            return quota_class.spot if spot else quota_class.on_demand
    return None


# --------------------------------------------------------------------------------------------
# The request, validated
# --------------------------------------------------------------------------------------------

#: How messages name each argument; the CLI passes its flags instead.
PARAMETERS = {"region": "region", "instance_type": "instance_type", "nodes": "nodes", "spot": "spot",
              "reservation_ids": "reservation_ids", "availability_zone_ids": "availability_zone_ids",
              "engine": "engine"}


@dataclass(frozen=True)
class Arguments:
    """A preflight's arguments as given (see :func:`preflight`), before :meth:`Request.create` checks them."""

    region: str
    instance_type: str
    nodes: int
    spot: bool = False
    reservation_ids: Iterable[str] = ()
    availability_zone_ids: Iterable[str] | None = None
    engine: str = "batch"


@dataclass(frozen=True)
class Request:
    region: str
    spec: catalog.InstanceSpec
    nodes: int
    spot: bool
    reservation_ids: tuple[str, ...]
    availability_zone_ids: tuple[str, ...]
    engine: str

    @classmethod
    def create(cls, given: Arguments, names: Mapping[str, str] = PARAMETERS) -> Request:
        """Validate the arguments; ConfigurationError names the argument (as ``names`` spells it) and the value."""
        region, instance_type, nodes, spot = given.region, given.instance_type, given.nodes, given.spot
        reservation_ids, availability_zone_ids, engine = given.reservation_ids, given.availability_zone_ids, given.engine
        known = catalog.default_catalog()
        known.check_region(region, names["region"])
        spec = known.get(instance_type, names["instance_type"])
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise ConfigurationError(f"{names['nodes']} ({nodes!r}) must be a whole number, at least 1")
        if engine not in workloads.ENGINES:
            raise unknown_name("engine", engine, workloads.ENGINES, names["engine"])
        reservations = tuple(dict.fromkeys(reservation_ids))
        for reservation in reservations:
            if not capacity_blocks.RESERVATION_ID.fullmatch(str(reservation)):
                raise ConfigurationError(f"{names['reservation_ids']}: {reservation!r} is not a Capacity Reservation "
                                         "ID; allowed: 'cr-' and 17 lowercase hex digits, e.g. cr-0123456789abcdef0")
        if spot and reservations:
            raise ConfigurationError(f"{names['spot']} with {names['reservation_ids']}: spot instances cannot use a "
                                     "Capacity Reservation or Capacity Block; drop one of them")
        zones = tuple(dict.fromkeys(availability_zone_ids or ()))
        codes = region_az_codes(region)
        for zone in zones:
            match = AZ_ID.fullmatch(str(zone))
            if match is None:
                raise ConfigurationError(f"{names['availability_zone_ids']}: {zone!r} is not an AZ ID; allowed: "
                                         f"IDs such as {_example_az(codes)} (not AZ names such as {region}a)")
            if codes and match.group(1) not in codes:
                raise ConfigurationError(f"{names['availability_zone_ids']}: {zone} is not in {region}; its AZ IDs "
                                         f"start with {' or '.join(c + '-' for c in sorted(codes))}")
        return cls(region, spec, nodes, bool(spot), reservations, zones, engine)


def region_az_codes(region: str) -> frozenset[str]:
    """The short codes (use1) that start the AZ IDs of ``region``, as the catalog's offerings show them."""
    zones = {zone for spec in catalog.default_catalog() for zone in spec.offered_azs(region)}
    return frozenset(m.group(1) for m in map(AZ_ID.fullmatch, zones) if m)


def _example_az(codes: frozenset[str]) -> str:
    return f"{min(codes)}-az1" if codes else "use1-az4"


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


class _NotRun(Exception):
    """A check could not ask AWS; the message says why."""


def _aws_call(check: str, call: Callable[[], Any]) -> Any:
    """``call()``; AWS's refusals and missing credentials become _NotRun with the reason (and the IAM action)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from botocore.parsers import ResponseParserError

    try:
        return call()
    except NoCredentialsError as exc:
        raise _NotRun(NO_CREDENTIALS) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        message = " ".join(str(error.get("Message", "")).split())  # one line, even for an HTML error page
        reason = f"{code}: {message[:200]}".rstrip(": ")
        if "denied" in code.lower() or code in ("UnauthorizedOperation", "AuthFailure"):
            reason += f" (it needs {ACTIONS[check]})"
        raise _NotRun(reason) from exc
    except BotoCoreError as exc:
        raise _NotRun(f"could not reach AWS ({exc})") from exc
    except ResponseParserError as exc:  # e.g. an HTML error page from a proxy or an emulator
        raise _NotRun(f"AWS's answer could not be read ({str(exc).splitlines()[0]})") from exc


def _not_run(name: str, reason: str) -> Check:
    fix = CREDENTIALS_FIX if reason == NO_CREDENTIALS else (
        f"grant {ACTIONS[name.split()[0]]} to your identity" if "(it needs" in reason else None)
    return Check(name, "unknown", f"could not run: {reason}", fix)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def check_quota(service_quotas: Any, request: Request) -> Check:
    """The family's vCPU quota (on-demand or spot) against nodes × vCPUs."""
    from botocore.exceptions import ClientError

    spec, region = request.spec, request.region
    needed = request.nodes * spec.vcpus
    need = f"{request.nodes} × {spec.instance_type} need {needed:,} vCPUs ({request.nodes} × {spec.vcpus})"
    quota = quota_for(spec.instance_type, request.spot)
    if quota is None:
        return Check("quota", "unknown", f"could not run: quotas.json names no vCPU quota for the "
                     f"{spec.family} family; {need}", "find its quota in the Service Quotas console (Amazon EC2)")
    label = f"{quota.name} ({quota.code})"
    try:
        value, origin = _aws_call("quota", lambda: service_quotas.get_service_quota(
            ServiceCode="ec2", QuotaCode=quota.code)["Quota"]["Value"]), ""
    except _NotRun as exc:
        if not isinstance(exc.__cause__, ClientError) or \
                exc.__cause__.response.get("Error", {}).get("Code") != "NoSuchResourceException":
            return _not_run("quota", str(exc))
        try:  # no applied value for this account: AWS's default is the value it runs at
            value = _aws_call("quota", lambda: service_quotas.get_aws_default_service_quota(
                ServiceCode="ec2", QuotaCode=quota.code)["Quota"]["Value"])
        except _NotRun as again:
            return _not_run("quota", f"{quota.code} is neither applied to this account nor known as a default in "
                                     f"{region} ({again})")
        origin = " (AWS default: GetServiceQuota has no applied value for this account)"
    detail = f"{label}: {_number(value)} vCPUs in {region}{origin}; {need}"
    if value >= needed:
        return Check("quota", "pass", detail + "; instances already running in this quota count against it",
                     source="aws")
    fix = (f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {quota.code} "
           f"--desired-value {needed} --region {region}  (add the vCPUs of instances already running in this quota; "
           f"console: {SERVICE_QUOTAS_CONSOLE.format(code=quota.code)})")
    return Check("quota", "fail", detail, fix, "aws")


def check_offering(ec2: Any | None, request: Request, offline_reason: str | None = None) -> Check:
    """The type is offered in the region and in each requested AZ ID: by the API, or by the catalog offline."""
    spec, region = request.spec, request.region
    source, suffix = "aws", ""
    try:
        if ec2 is None:
            raise _NotRun(offline_reason or NO_CREDENTIALS)
        pages = _aws_call("offering", lambda: list(ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone-id", Filters=[{"Name": "instance-type", "Values": [spec.instance_type]}])))
        offered = tuple(sorted({o["Location"] for page in pages for o in page["InstanceTypeOfferings"]}))
    except _NotRun as exc:
        source, offered = "catalog", spec.offered_azs(region)
        suffix = (f" (catalog snapshot, offerings as of {catalog.default_catalog().provenance.offerings_as_of}; "
                  f"AWS could not be asked: {exc})")
    if not offered:
        elsewhere = ", ".join(spec.regions) or "no region"
        return Check("offering", "fail", f"{spec.instance_type} is not offered in {region}{suffix}",
                     f"choose a region that offers it (catalog: {elsewhere})", source)
    missing = [zone for zone in request.availability_zone_ids if zone not in offered]
    if missing:
        return Check("offering", "fail", f"{spec.instance_type} is not offered in {', '.join(missing)}; in {region} "
                     f"it is offered in {', '.join(offered)}{suffix}", f"use AZ IDs among {', '.join(offered)}", source)
    where = ", ".join(request.availability_zone_ids) if request.availability_zone_ids else (
        f"{region} ({', '.join(offered)})")
    return Check("offering", "pass", f"{spec.instance_type} is offered in {where}{suffix}", source=source)


def check_reservations(ec2: Any | None, request: Request, now: dt.datetime,
                       offline_reason: str | None = None) -> list[Check]:
    """Each named reservation, then their free instances together ("reserved capacity")."""
    checks, free = [], {}
    for reservation_id in request.reservation_ids:
        name = f"reservation {reservation_id}"
        try:
            if ec2 is None:
                raise _NotRun(offline_reason or NO_CREDENTIALS)
            found = _describe_reservation(ec2, reservation_id)
        except _NotRun as exc:
            checks.append(_not_run(name, str(exc)))
            continue
        if found is None:
            checks.append(Check(name, "fail", f"{reservation_id} does not exist in {request.region} for this account",
                                f"check the ID and the region: aws ec2 describe-capacity-reservations "
                                f"--region {request.region}", "aws"))
            continue
        check = _reservation_check(name, found, request, now)
        checks.append(check)
        if check.status == "pass":
            total = int(found.get("TotalInstanceCount", 0))  # before its start, all of a scheduled one is free
            free[reservation_id] = (total if found.get("State") == "scheduled" else
                                    int(found.get("AvailableInstanceCount", 0)), total)
    if free:
        count = sum(available for available, _ in free.values())
        each = ", ".join(f"{rid} {available} of {total}" for rid, (available, total) in free.items())
        detail = f"{count} instance(s) free ({each}); {request.nodes} needed"
        if count >= request.nodes:
            checks.append(Check("reserved capacity", "pass", detail, source="aws"))
        else:
            checks.append(Check("reserved capacity", "fail", detail, "free instances that run in it, add a "
                                "reservation, enlarge an On-Demand Capacity Reservation (aws ec2 "
                                "modify-capacity-reservation --capacity-reservation-id cr-... --instance-count M), "
                                "or lower the node count", "aws"))
    return checks


def _describe_reservation(ec2: Any, reservation_id: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return _aws_call("reservation", lambda: ec2.describe_capacity_reservations(
            CapacityReservationIds=[reservation_id])["CapacityReservations"][0])
    except IndexError:
        return None
    except _NotRun as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and \
                cause.response.get("Error", {}).get("Code", "").startswith("InvalidCapacityReservationId"):
            return None
        raise


def _reservation_check(name: str, found: Mapping[str, Any], request: Request, now: dt.datetime) -> Check:
    """Pass when the reservation is active or scheduled and fits the type, platform and AZ; else fail with every
    reason. A scheduled one's instances are counted as free: nothing can run in it before it starts."""
    spec = request.spec
    block = found.get("ReservationType") == "capacity-block"
    kind = "Capacity Block" if block else "Capacity Reservation"
    state, end = found.get("State", "?"), found.get("EndDate")
    zone = found.get("AvailabilityZoneId") or found.get("AvailabilityZone", "?")
    problems, fixes = [], []
    if state == "expired" or (end is not None and end <= now):
        problems.append(f"it ended at {_utc(end)} (state {state})")
        fixes.append(f"buy a new Capacity Block (aws ec2 describe-capacity-block-offerings --instance-type "
                     f"{spec.instance_type} --instance-count {request.nodes} --capacity-duration-hours H "
                     f"--region {request.region})" if block else "create a new reservation, or name an active one")
    elif state not in ("active", "scheduled"):
        problems.append(f"its state is {state}; it must be active or scheduled")
        fixes.append("name an active reservation")
    elif block and end is not None and state == "active":
        cutoff = capacity_blocks.facts().termination_minutes_before_end
        if end - now <= dt.timedelta(minutes=cutoff):
            problems.append(f"it ends at {_utc(end)}, and EC2 terminates its instances from {cutoff} minutes before "
                            "the end")
            fixes.append("buy a new Capacity Block")
    if found.get("InstanceType") != spec.instance_type:
        problems.append(f"it is for {found.get('InstanceType')}, not {spec.instance_type}")
        fixes.append(f"name a reservation for {spec.instance_type}, or pass --instance-type "
                     f"{found.get('InstanceType')}")
    if found.get("InstancePlatform", "Linux/UNIX") != "Linux/UNIX":
        problems.append(f"it is for {found['InstancePlatform']} instances; the cluster's AMIs are Linux/UNIX")
        fixes.append("name a Linux/UNIX reservation")
    if request.availability_zone_ids and zone not in request.availability_zone_ids:
        problems.append(f"it is in {zone}, not in {', '.join(request.availability_zone_ids)}")
        fixes.append(f"pin the cluster to {zone}")
    until = f" until {_utc(end)}" if end is not None else ""
    starts = f" from {_utc(found.get('StartDate'))}" if state == "scheduled" else ""
    summary = f"{state} {kind} for {found.get('InstanceType')} in {zone}{starts}{until}"
    if problems:
        return Check(name, "fail", f"{kind} {found.get('CapacityReservationId', name.split()[-1])}: "
                     + "; ".join(problems), "; ".join(dict.fromkeys(fixes)), "aws")
    return Check(name, "pass", summary, source="aws")


def _utc(moment: dt.datetime | None) -> str:
    return "an unknown time" if moment is None else f"{moment.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"


def check_ami(ssm: Any | None, request: Request, offline_reason: str | None = None) -> Check:
    """The SSM public parameter of the catalog's AMI for the type and engine resolves in the region."""
    try:
        image = workloads.default_machine_image(request.spec, request.engine)
    except ConfigurationError as exc:
        return Check("ami", "unknown", f"could not run: {exc}", "the construct needs machine_image=; check that "
                     "AMI yourself")
    parameter = image.parameter
    try:
        if ssm is None:
            raise _NotRun(offline_reason or NO_CREDENTIALS)
        value = _aws_call("ami", lambda: ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except _NotRun as exc:
        from botocore.exceptions import ClientError

        cause = exc.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return Check("ami", "fail", f"{parameter} ({image.name}) does not resolve in {request.region}",
                         "choose a region where the AMI is published, or pass machine_image= with your own AMI",
                         "aws")
        return _not_run("ami", str(exc))
    return Check("ami", "pass", f"{parameter} ({image.name}) resolves to {value} in {request.region}", source="aws")


# --------------------------------------------------------------------------------------------
# The pre-flight
# --------------------------------------------------------------------------------------------


def run(request: Request, session: Any = None, *, now: dt.datetime | None = None) -> PreflightReport:
    """Every check of ``request``. ``session``: a boto3 Session (default: boto3's, from the environment).

    Only ``session.client(name, region_name=..., config=...)`` and ``session.get_credentials()`` are used, so
    tests can hand in a session whose clients are stubbed.
    """
    import boto3
    from botocore.config import Config

    session = session or boto3.Session()
    now = now or dt.datetime.now(dt.timezone.utc)
    offline = NO_CREDENTIALS if session.get_credentials() is None else None  # resolve once: IMDS probes are slow
    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})

    def client(service: str) -> Any | None:
        return None if offline else session.client(service, region_name=request.region, config=config)

    checks = [_not_run("quota", offline) if offline else check_quota(client("service-quotas"), request)]
    ec2 = client("ec2")
    checks.append(check_offering(ec2, request, offline))
    checks += check_reservations(ec2, request, now, offline)
    checks.append(check_ami(client("ssm"), request, offline))
    return PreflightReport(request.region, request.spec.instance_type, request.nodes, request.spot, request.engine,
                           request.reservation_ids, request.availability_zone_ids, tuple(checks))


def preflight(*, region: str, instance_type: str, nodes: int, spot: bool = False,
              reservation_ids: Sequence[str] = (), availability_zone_ids: Sequence[str] | None = None,
              engine: str = "batch", session: Any = None) -> PreflightReport:
    """Check quota, offering, reservations and AMI for ``nodes`` × ``instance_type`` in ``region``; read-only.

    :param spot: check the spot vCPU quota instead of the on-demand one. Default: on-demand.
    :param reservation_ids: Capacity Reservations or Capacity Blocks ("cr-" and 17 hex digits) the cluster will
        use. Default: none, and no reservation is checked.
    :param availability_zone_ids: AZ IDs (use1-az4) the cluster will use. Default: any AZ of the region.
    :param engine: "batch" (ECS-optimized AMIs) or "nodes" (DLAMIs): which AMI is checked. Default: "batch".
    :param session: a boto3 Session. Default: boto3's from the environment (profile, variables, instance role).
    :raises ConfigurationError: an argument is malformed (unknown region or type, nodes < 1, a bad ID).
    """
    return run(Request.create(Arguments(region=region, instance_type=instance_type, nodes=nodes, spot=spot,
                                        reservation_ids=reservation_ids, availability_zone_ids=availability_zone_ids,
                                        engine=engine)), session)
