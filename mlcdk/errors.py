"""The one exception type for user mistakes, and the helpers that word its messages."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any

#: How much of a value an error message shows, at most.
SHOWN = 80


class ConfigurationError(ValueError):
    """A configuration value is wrong. The message names the parameter, the value and what is allowed.

    Raised at construction time (never at deploy time), so a bad value never becomes a failed deploy.
    """


def shown(value: Any, limit: int = SHOWN) -> str:
    """A bounded representation of ``value`` for an error message: never the whole of a long value, and never an
    exception of its own (an int past Python's 4,300-digit limit has no repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"<an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits>"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return repr(value)
    brief = reprlib.Repr()
    brief.maxstring = brief.maxother = brief.maxlong = limit
    try:
        text = brief.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still described
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def close_matches(value: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` entries of ``choices`` that look like ``value`` (for "did you mean" hints)."""
    return difflib.get_close_matches(str(value), sorted(set(choices)), n=n, cutoff=cutoff)


def unknown_name(kind: str, value: str, choices: Iterable[str], parameter: str | None = None) -> ConfigurationError:
    """A ConfigurationError for a name that is not one of ``choices``, with close matches when there are any."""
    choices = sorted(set(choices))
    label = f"{parameter}: " if parameter else ""
    matches = close_matches(value, choices)
    if matches:
        hint = "did you mean " + " or ".join(repr(m) for m in matches) + "?"
    elif len(choices) <= 12:
        hint = "allowed: " + ", ".join(choices)
    else:
        hint = f"{len(choices)} are known; list them with `mlcdk catalog list`" if kind == "instance type" else (
            f"{len(choices)} are known, e.g. " + ", ".join(choices[:8]) + ", ..."
        )
    return ConfigurationError(f"{label}unknown {kind} {shown(value)}; {hint}")
