"""Sessions, clients and AWS errors for the job commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class JobsError(Exception):
    """Something the user can fix (a name, a value, credentials): one line, exit code 2."""

    code = 2


class AwsError(JobsError):
    """An AWS error nobody expected: one line with AWS's error code, exit code 1."""

    code = 1


def session(region: str | None) -> Any:
    """A boto3 session in ``region`` (default: boto3's configured region); JobsError when there is none."""
    import boto3

    found = boto3.Session(region_name=region)
    if found.region_name is None:
        raise JobsError("no AWS region: pass --region, or configure one (AWS_DEFAULT_REGION or `aws configure`)")
    return found


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into JobsError (credentials, profiles) or AwsError (anything else)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    try:
        yield
    except NoCredentialsError:
        raise JobsError("no AWS credentials found: configure them (aws configure, AWS_PROFILE, or environment "
                        "variables)") from None
    except ProfileNotFound as error:
        raise JobsError(str(error)) from None
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise AwsError(f"{detail.get('Code', 'ClientError')}: {detail.get('Message', error)}") from None
    except BotoCoreError as error:
        raise AwsError(str(error)) from None


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None
