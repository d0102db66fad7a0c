"""Read-back of the KMS keys (state, rotation) and the S3 buckets (encryption, versioning)."""
from __future__ import annotations

from collections.abc import Collection

from mlcdk.emulator.readback._view import Clients, Section, StackView


def describe_keys(view: StackView) -> None:
    kms = view.clients("kms")
    for key_id, logical in view.key_names().items():
        view.keep("kms keys", key_id, f"KMS key {key_id}", logical)
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        rotation = kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        view.line(f"  KMS key {key_id} ({logical}): {metadata['KeyState']}, rotation {'on' if rotation else 'OFF'}"
                  f" - {metadata.get('Description', '')}")


def keys_still_usable(clients: Clients, ids: Collection[str]) -> set[str]:
    """Keys neither gone, disabled nor pending deletion (real CloudFormation schedules a key's deletion; moto
    removes it at once)."""
    kms = clients("kms")
    usable = set()
    for key_id in ids:
        try:
            state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
        except kms.exceptions.NotFoundException:
            continue
        if state not in ("PendingDeletion", "Disabled"):
            usable.add(key_id)
    return usable


def _encryption(s3, bucket: str) -> str:  # noqa: ANN001 - a boto3 client
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except s3.exceptions.ClientError as error:  # ServerSideEncryptionConfigurationNotFoundError when unset
        code = error.response.get("Error", {}).get("Code", type(error).__name__)
        # "Amazon S3 now applies server-side encryption with Amazon S3 managed keys (SSE-S3) as the base level of
        # encryption for every bucket" (S3 User Guide, "Using server-side encryption with Amazon S3 managed keys").
        return f"none set by the template (moto answers {code}; S3 itself applies SSE-S3 to every bucket)"
    sse = rules[0]["ApplyServerSideEncryptionByDefault"]
    return sse["SSEAlgorithm"] + (f" with key {sse['KMSMasterKeyID']}" if sse.get("KMSMasterKeyID") else "")


def describe_buckets(view: StackView) -> None:
    s3 = view.clients("s3")
    for resource in view.of_type("AWS::S3::Bucket"):
        bucket = resource.physical
        view.keep("s3 buckets", bucket, f"S3 bucket {bucket}", resource.logical)
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status", "not enabled")
        wanted = view.properties(resource.logical).get("VersioningConfiguration", {}).get("Status")
        if wanted and wanted != versioning:
            versioning += f" (the template asks for {wanted}; moto ignores VersioningConfiguration)"
        view.line(f"  S3 bucket {bucket}: encryption {_encryption(s3, bucket)}; versioning {versioning}")


def buckets_still_there(clients: Clients, names: Collection[str]) -> set[str]:
    return {b["Name"] for b in clients("s3").list_buckets().get("Buckets", [])} & set(names)


SECTIONS = (Section("kms keys", describe_keys, keys_still_usable),
            Section("s3 buckets", describe_buckets, buckets_still_there))
