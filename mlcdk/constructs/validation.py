"""Construction-time checks as a table of (failed, message) rows, evaluated in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk

from mlcdk.errors import ConfigurationError


def check(rows: Iterable[tuple[bool, str]]) -> None:
    """Raise ConfigurationError with the message of the first failed row."""
    for failed, message in rows:
        if failed:
            raise ConfigurationError(message)


def concrete(value: Any) -> bool:
    """False for CDK tokens (unresolved until deploy): those are never validated at synth time."""
    return value is not None and not cdk.Token.is_unresolved(value)
