"""The identifier parsers (mlcdk.presets.identifiers): S3 URIs by S3's bucket naming rules, ARNs that must match
the stack's partition, region and account, reservation IDs, e-mail addresses and host names. Expected outcomes
are worked by hand from the rules' sources (S3 User Guide, "General purpose bucket naming rules"; IAM User
Guide, "IAM identifiers"; RFC 5321/5322; RFC 1123)."""
from __future__ import annotations

import pytest

from mlcdk import ConfigurationError
from mlcdk.presets import identifiers
from mlcdk.presets.identifiers import ArnRule

BUCKETS = [
    # (bucket, None when valid, else a fragment of the problem)
    ("my-datasets", None),
    ("abc", None),
    ("a" * 63, None),
    ("data.sets.v2", None),
    ("ab", "3 to 63 characters"),
    ("a" * 64, "3 to 63 characters"),
    ("My-Data", "only lowercase letters"),
    ("my_data", "only lowercase letters"),
    ("$(reboot)", "only lowercase letters"),
    ("-data", "begin and end with a letter or digit"),
    ("data.", "begin and end with a letter or digit"),
    ("data..sets", "two adjacent periods"),
    ("192.168.5.4", "formatted as an IP address"),
    ("10.0.0.1", "formatted as an IP address"),
    ("xn--data", "reserved"),
    ("sthree-data", "reserved"),
    ("amzn-s3-demo-bucket", "reserved"),
    ("data-s3alias", "reserved"),
    ("data--ol-s3", "reserved"),
    ("data.mrap", "reserved"),
    ("data--x-s3", "reserved"),
]


@pytest.mark.parametrize(("bucket", "problem"), BUCKETS, ids=[b[:20] for b, _ in BUCKETS])
def test_bucket_naming_rules(bucket, problem):
    found = identifiers.bucket_problem(bucket)
    assert found is None if problem is None else problem in found


URIS = [
    ("s3://my-datasets", None),
    ("s3://my-datasets/", None),
    ("s3://my-datasets/imagenet/train/", None),
    ("s3://my-datasets/year=2024/month=01/part-0001.parquet", None),
    ("s3://my-datasets/a+b,c@d:e(1)*'!", None),
    ("my-datasets/imagenet", "must be an S3 URI like s3://bucket/prefix/"),
    ("https://my-datasets.s3.amazonaws.com/x", "must be an S3 URI"),
    ("s3://192.168.5.4/data", "has the bucket '192.168.5.4', which must not be formatted as an IP address"),
    ("s3://$(reboot)/data", "has the bucket '$(reboot)', which may hold only lowercase letters"),
    ("s3://data/$(reboot)", "its key holds '$'"),
    ("s3://data/my file", "its key holds ' '"),
    ("s3://data/x`id`", "its key holds '`'"),
    ("s3://data/line\n", "its key holds '\\n'"),
    ("s3://data/a//b", "an empty, '.' or '..' segment"),
    ("s3://data/../secrets", "an empty, '.' or '..' segment"),
    ("s3://data/" + "k" * 1025, "its key is longer than 1024 bytes"),
    ("s3://data/" + "k" * 5000, "is longer than an S3 URI can be"),
]


@pytest.mark.parametrize(("uri", "problem"), URIS, ids=[u[:30] for u, _ in URIS])
def test_s3_uris(uri, problem):
    found = identifiers.s3_uri_problem(uri)
    assert found is None if problem is None else problem in found


def test_parse_s3_uri_names_the_parameter_and_returns_the_parts():
    assert identifiers.parse_s3_uri("s3://my-datasets/imagenet/", "data") == identifiers.S3Location(
        "my-datasets", "imagenet/")
    assert identifiers.parse_s3_uri("s3://my-datasets/imagenet/", "data").uri == "s3://my-datasets/imagenet/"
    with pytest.raises(ConfigurationError, match=r"^workdir \('s3://10.0.0.1/x'\) has the bucket"):
        identifiers.parse_s3_uri("s3://10.0.0.1/x", "workdir")


GROUP = ArnRule(service="resource-groups", resource_prefix="group/", region="us-east-1", account="123456789012")
ARNS = [
    ("arn:aws:resource-groups:us-east-1:123456789012:group/my-reservations", GROUP, None),
    ("arn:aws:resource-groups:eu-west-1:123456789012:group/my-reservations", GROUP,
     "is in eu-west-1; the stack is in us-east-1"),
    ("arn:aws:resource-groups:us-east-1:210987654321:group/my-reservations", GROUP,
     "belongs to the account 210987654321; the stack deploys to 123456789012"),
    ("arn:aws-cn:resource-groups:us-east-1:123456789012:group/g", GROUP,
     "names the partition aws-cn, but us-east-1 is in aws"),
    ("arn:aws-cn:resource-groups:cn-north-1:123456789012:group/g", ArnRule("resource-groups", "group/"), None),
    ("arn:aws-us-gov:resource-groups:us-gov-west-1:123456789012:group/g", ArnRule("resource-groups", "group/"), None),
    ("arn:aws:resource-groups:us-gov-west-1:123456789012:group/g", ArnRule("resource-groups", "group/"),
     "names the partition aws, but us-gov-west-1 is in aws-us-gov"),
    ("arn:aws:ec2:us-east-1:123456789012:group/g", GROUP, "must be an ARN, arn:PARTITION:resource-groups"),
    ("arn:aws:resource-groups:us-east-1:123456789012:groups/g", GROUP, "must be an ARN"),
    ("arn:aws:resource-groups:us-east-1:123456789012:group/", GROUP, "must be an ARN"),
    ("arn:aws:resource-groups:us-east-1:12345678901:group/g", GROUP, "must be an ARN"),
    ("arn:aws:resource-groups:useast1:123456789012:group/g", GROUP, "must be an ARN"),
    ("arn:aws:resource-groups:us-east-1:123456789012:group/a b", GROUP, "must be an ARN"),
    ("arn:mars:resource-groups:us-east-1:123456789012:group/g", GROUP, "must be an ARN"),
    ("my-group", GROUP, "must be an ARN"),
]


@pytest.mark.parametrize(("arn", "rule", "problem"), ARNS, ids=[f"arn{i}" for i in range(len(ARNS))])
def test_arns_match_the_stacks_partition_region_and_account(arn, rule, problem):
    found = identifiers.arn_problem(arn, rule)
    assert found is None if problem is None else problem in found, found


def test_parse_arn_returns_the_parts():
    arn = identifiers.parse_arn("arn:aws:resource-groups:us-east-1:123456789012:group/a:b", "g", GROUP)
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource) == (
        "aws", "resource-groups", "us-east-1", "123456789012", "group/a:b")


@pytest.mark.parametrize(("region", "partition"), [("us-east-1", "aws"), ("cn-northwest-1", "aws-cn"),
                                                   ("us-gov-east-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"),
                                                   ("us-isob-east-1", "aws-iso-b"), ("eu-isoe-west-1", "aws-iso-e"),
                                                   ("us-isof-south-1", "aws-iso-f"), ("eusc-de-east-1", "aws-eusc")])
def test_partition_of_a_region(region, partition):
    assert identifiers.partition_of(region) == partition


EMAILS = [
    ("ml-team@example.com", True),
    ("first.last+alerts@sub.example.co.uk", True),
    ("ops@xn--bcher-kva.example", True),
    ("ops@example..com", False),
    ("ops@.example.com", False),
    ("ops@example.com.", False),
    (".ops@example.com", False),
    ("o..ps@example.com", False),
    ("ops@example", False),
    ("ops@example.c", False),
    ("ops@-example.com", False),
    ("ops@exa_mple.com", False),
    ("a b@example.com", False),
    ("ops@@example.com", False),
    ("ops@example.com\n", False),
    ("x" * 65 + "@example.com", False),
    ("ops@" + "a" * 64 + ".com", False),
]


@pytest.mark.parametrize(("address", "valid"), EMAILS, ids=[a[:30] for a, _ in EMAILS])
def test_email_addresses(address, valid):
    assert (identifiers.email_problem(address) is None) is valid


@pytest.mark.parametrize(("value", "valid"), [("cr-0123456789abcdef0", True), ("cr-0123456789ABCDEF0", False),
                                              ("cr-0123456789abcdef", False), ("cr-0123456789abcdef0\n", False),
                                              (" cr-0123456789abcdef0", False)])
def test_reservation_ids(value, valid):
    assert (identifiers.reservation_id_problem(value) is None) is valid
