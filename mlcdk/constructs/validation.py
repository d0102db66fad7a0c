"""Construction-time checks as a table of (failed, message) rows, evaluated in order."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from mlcdk.errors import ConfigurationError
from mlcdk.params import STRING_TOKEN


def check(rows: Iterable[tuple[bool, str]]) -> None:
    """Raise ConfigurationError with the message of the first failed row."""
    for failed, message in rows:
        if failed:
            raise ConfigurationError(message)


def concrete(value: Any) -> bool:
    """False for CDK tokens (unresolved until deploy): those are never validated at synth time.

    Strings and whole numbers are answered here, without a jsii round trip: aws-cdk encodes a string token as
    ``${Token[...]}`` text and a number token as a float, never an int. Anything else asks aws-cdk, when it is
    loaded: a token exists only once aws_cdk is, so this module imports no aws_cdk and the plan steps
    (mlcdk.constructs.plan_training, plan_fleet) run without the jsii kernel.
    """
    if value is None:
        return False
    if isinstance(value, (bool, int)):
        return True
    if isinstance(value, str):
        return STRING_TOKEN not in value
    cdk = sys.modules.get("aws_cdk")
    return cdk is None or not cdk.Token.is_unresolved(value)
