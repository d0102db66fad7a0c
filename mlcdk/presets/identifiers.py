"""Parsers of the identifiers users give mlcdk: S3 URIs, ARNs, Capacity Reservation IDs, AZ IDs, e-mail addresses
and host names. Pure Python (no aws_cdk); the constructs, the CLI and the job commands share them.

Each ``*_problem(value, ...)`` returns why ``value`` is not such an identifier, naming what is allowed, or None;
``parse_*`` returns the parts or raises ConfigurationError naming the parameter and a bounded form of the value.
No check here can backtrack: the rules are loops over the characters, and the few regular expressions are
fixed sequences of character classes without nested repetition. Inputs are length-checked first.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass
from typing import Any

from mlcdk.errors import ConfigurationError, shown

# --------------------------------------------------------------------------------------------
# S3 (Amazon S3 User Guide, "General purpose bucket naming rules" and "Naming Amazon S3 objects")
# --------------------------------------------------------------------------------------------

_BUCKET_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: Object key characters mlcdk takes: the S3 guide's "safe characters", '/', and '=', '+', ',', '@', ':' (which
#: the guide lists as needing special handling but data sets use, as in Hive-style year=2024/ prefixes).
#: Refused: spaces, control characters, and '$', '&', ';', '?', quotes, '\\', '{', '}', '[', ']', '<', '>', '#',
#: '|', '^', '%', '`', '~': they break shells, URLs or FSx paths.
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "!-_.*'()/=+,@:")
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or prefix; empty for the whole bucket)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def bucket_problem(name: object) -> str | None:
    """Why ``name`` breaks S3's general purpose bucket naming rules, or None."""
    if not isinstance(name, str) or not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters"
    if not set(name) <= _BUCKET_CHARS:
        return "may hold only lowercase letters, digits, '.' and '-'"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must begin and end with a letter or digit"
    if ".." in name:
        return "must not hold two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "must not be formatted as an IP address"
    except ValueError:
        pass
    if name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        return f"must not begin with {', '.join(_BUCKET_PREFIXES)} or end with {', '.join(_BUCKET_SUFFIXES)} (reserved)"
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` (an object key or prefix, without the bucket) is not one mlcdk takes, or None."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"its key is longer than {MAX_KEY_BYTES} bytes"
    bad = next((c for c in key if c not in _KEY_CHARS), None)
    if bad is not None:
        return (f"its key holds {bad!r}; keys may hold letters, digits and ! - _ . * ' ( ) / = + , @ : (no spaces, "
                "shell or URL characters)")
    segments = key.split("/")
    if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
        return "its key has an empty, '.' or '..' segment"
    return None


def s3_uri_problem(uri: object) -> str | None:
    """Why ``uri`` is not ``s3://bucket`` or ``s3://bucket/key`` with a valid bucket and key, or None."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return "must be an S3 URI like s3://bucket/prefix/"
    if len(uri) > 5 + 63 + 1 + MAX_KEY_BYTES:
        return f"is longer than an S3 URI can be ({5 + 63 + 1 + MAX_KEY_BYTES} characters)"
    bucket, _, key = uri[5:].partition("/")
    problem = bucket_problem(bucket)
    if problem:
        return f"has the bucket {shown(bucket)}, which {problem}"
    return key_problem(key)


def parse_s3_uri(uri: object, parameter: str) -> S3Location:
    """The bucket and key of ``uri``; ConfigurationError naming ``parameter`` when it is not a valid S3 URI."""
    problem = s3_uri_problem(uri)
    if problem:
        raise ConfigurationError(f"{parameter} ({shown(uri)}) {problem}")
    bucket, _, key = uri[5:].partition("/")
    return S3Location(bucket, key)


# --------------------------------------------------------------------------------------------
# ARNs (IAM User Guide, "IAM identifiers": arn:partition:service:region:account-id:resource)
# --------------------------------------------------------------------------------------------

#: A region name: two letters, words, a number (us-east-1, us-gov-west-1, eu-isoe-west-1, ap-southeast-7).
REGION = re.compile(r"[a-z]{2}(?:-[a-z]{2,12}){1,3}-\d{1,2}")
ACCOUNT = re.compile(r"\d{12}")
#: Region name prefixes and their partitions (AWS General Reference, "AWS partitions"); every other region is "aws".
PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-isof-", "aws-iso-f"),
              ("eu-isoe-", "aws-iso-e"), ("us-iso-", "aws-iso"), ("eusc-", "aws-eusc"))
KNOWN_PARTITIONS = frozenset({"aws", *(p for _, p in PARTITIONS)})
MAX_ARN = 2048


def partition_of(region: str) -> str:
    """The partition of a region name: ``aws-cn`` for cn-north-1, ``aws`` for us-east-1."""
    return next((partition for prefix, partition in PARTITIONS if region.startswith(prefix)), "aws")


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


@dataclass(frozen=True)
class ArnRule:
    """What an ARN must be: its service, the start of its resource (e.g. ``group/``), and the stack's region and
    account it must match (None: not known, not checked)."""

    service: str
    resource_prefix: str = ""
    region: str | None = None
    account: str | None = None
    example: str = ""


def arn_problem(value: object, rule: ArnRule) -> str | None:
    """Why ``value`` is not an ARN of ``rule.service`` in the stack's partition, region and account, or None."""
    example = f" (e.g. {rule.example})" if rule.example else ""
    if not isinstance(value, str) or len(value) > MAX_ARN or value.count(":") < 5:
        return f"must be an ARN, arn:PARTITION:{rule.service}:REGION:ACCOUNT:{rule.resource_prefix}NAME{example}"
    prefix, partition, service, region, account, resource = value.split(":", 5)
    resource_ok = resource.startswith(rule.resource_prefix) and len(resource) > len(rule.resource_prefix) and all(
        c.isprintable() and not c.isspace() for c in resource)
    if prefix != "arn" or partition not in KNOWN_PARTITIONS or service != rule.service or not resource_ok \
            or not REGION.fullmatch(region) or not ACCOUNT.fullmatch(account):
        return f"must be an ARN, arn:PARTITION:{rule.service}:REGION:ACCOUNT:{rule.resource_prefix}NAME{example}"
    if partition != partition_of(region):
        return f"names the partition {partition}, but {region} is in {partition_of(region)}"
    if rule.region is not None and region != rule.region:
        return f"is in {region}; the stack is in {rule.region}, and EC2 uses only what is in its own region"
    if rule.account is not None and account != rule.account:
        return f"belongs to the account {account}; the stack deploys to {rule.account}"
    return None


def parse_arn(value: object, parameter: str, rule: ArnRule) -> Arn:
    """The parts of ``value``; ConfigurationError naming ``parameter`` when :func:`arn_problem` finds one."""
    problem = arn_problem(value, rule)
    if problem:
        raise ConfigurationError(f"{parameter} ({shown(value)}) {problem}")
    return Arn(*value.split(":", 5)[1:])


# --------------------------------------------------------------------------------------------
# EC2 identifiers
# --------------------------------------------------------------------------------------------

#: An On-Demand Capacity Reservation or Capacity Block ID: "cr-" and 17 hexadecimal digits.
RESERVATION_ID = re.compile(r"cr-[0-9a-f]{17}")
#: An AZ ID ("use1-az4") or a Local Zone's ("use1-dfw2-az1"); group 1 is the region's short code ("use1").
AZ_ID = re.compile(r"([a-z]{2,5}\d)(?:-[a-z]{3,5}\d+)?-az\d{1,2}")


def reservation_id_problem(value: object) -> str | None:
    if isinstance(value, str) and RESERVATION_ID.fullmatch(value):
        return None
    return "must be 'cr-' followed by 17 lowercase hexadecimal digits"


# --------------------------------------------------------------------------------------------
# E-mail addresses (RFC 5321 lengths, RFC 5322 dot-atom) and host names (RFC 1123)
# --------------------------------------------------------------------------------------------

_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-")
_LABEL = frozenset(string.ascii_letters + string.digits + "-")


def host_problem(name: object) -> str | None:
    """Why ``name`` is not a DNS host name (labels of letters, digits and '-', 1-63 characters, none beginning or
    ending with '-', 253 characters in all), or None."""
    if not isinstance(name, str) or not 0 < len(name) <= 253:
        return "must be a host name of 1 to 253 characters"
    for label in name.split("."):
        if not (0 < len(label) <= 63 and set(label) <= _LABEL and label[0] != "-" and label[-1] != "-"):
            return "must be a host name: labels of letters, digits and '-', none empty or beginning or ending with '-'"
    return None


def email_problem(address: object) -> str | None:
    """Why ``address`` is not an e-mail address SNS and Budgets can deliver to, or None: a dot-atom local part
    of at most 64 characters, '@', and a host name with a top-level domain of letters."""
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        return "is not an e-mail address like ml-team@example.com"
    local, domain = address.split("@")
    atoms = local.split(".")
    if not 0 < len(local) <= 64 or not all(atom and set(atom) <= _ATEXT for atom in atoms):
        return "is not an e-mail address like ml-team@example.com (its part before '@' is not valid)"
    top = domain.rsplit(".", 1)[-1]
    if "." not in domain or host_problem(domain) or not (top.isascii() and (top.isalpha() or top.startswith("xn--"))
                                                         and len(top) >= 2):
        return "is not an e-mail address like ml-team@example.com (its domain is not valid)"
    return None


def parse_emails(value: Any, parameter: str = "alarm_email") -> tuple[str, ...]:
    """Comma-separated (or listed) e-mail addresses, each checked."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    emails = tuple(str(item).strip() for item in items if str(item).strip())
    for email in emails:
        if problem := email_problem(email):
            raise ConfigurationError(f"{parameter} ({shown(email)}) {problem}")
    return emails
