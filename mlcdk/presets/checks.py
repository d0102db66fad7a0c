"""The value checks behind :class:`mlcdk.presets.sizing.Workload` and :class:`~mlcdk.presets.sizing.SizingRules`:
each raises ConfigurationError naming the parameter, the value and what is allowed (pure Python, no aws_cdk)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from mlcdk.errors import ConfigurationError, close_matches

_COUNT = re.compile(r"^([+-]?[0-9][0-9_]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([kmbt]?)$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_count(value: Any, parameter: str, *, minimum: float = 1.0, maximum: float | None = None) -> float:
    """A positive count from a number or a string with an optional K, M, B or T suffix ("7B", "1.5T", "70e9").

    ConfigurationError names ``parameter`` and the value when it is unparseable, not positive, below ``minimum``
    or above ``maximum``.
    """
    usage = "use a number with an optional K, M, B or T suffix, e.g. 7B, 1.5T, 350M or 70e9"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}")
    if isinstance(value, str):
        match = _COUNT.match(value.strip())
        if match is None:
            raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}")
        try:
            number = float(Decimal(match[1].replace("_", "")) * _SUFFIX[match[2].lower()])
        except (InvalidOperation, OverflowError):
            raise ConfigurationError(f"{parameter} ({value!r}) is not a count; {usage}") from None
    else:
        number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{parameter} ({value!r}) must be a positive, finite count; {usage}")
    if number < minimum:
        raise ConfigurationError(f"{parameter} ({value!r}) is under the minimum of {minimum:,.0f}; "
                                 "did you forget a suffix, as in 7B?")
    if maximum is not None and number > maximum:
        bound = f"{maximum:.0e}".replace("e+", "e")
        raise ConfigurationError(f"{parameter} ({value!r}) is over the maximum of {bound}; "
                                 "use a number with an optional K, M, B or T suffix, e.g. 7B or 1.5T")
    return number


def choice(parameter: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` lower-cased and stripped when it is one of ``allowed``; else an error with close matches."""
    allowed = tuple(allowed)
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in allowed:
        matches = close_matches(str(value), allowed)
        hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
        raise ConfigurationError(f"{parameter} ({value!r}) must be one of {', '.join(allowed)}{hint}")
    return text


def positive_int(parameter: str, value: Any, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum is not None and value > maximum):
        upto = f" and at most {maximum:,}" if maximum is not None else ""
        raise ConfigurationError(f"{parameter} ({value!r}) must be a whole number of at least 1{upto}")
    return value


def positive_number(parameter: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{parameter} ({value!r}) must be a number above 0")
    return float(value)


def fraction(parameter: str, value: Any, *, low: float = 0.0, high: float = 1.0, zero: bool = True) -> float:
    """A number from ``low`` to ``high`` (above ``low`` when not ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            not low <= value <= high or (not zero and value == low):
        above = "from" if zero else "above"
        raise ConfigurationError(f"{parameter} ({value!r}) must be a fraction {above} {low:g} "
                                 f"{'to' if zero else 'and at most'} {high:g}")
    return float(value)


def regions(value: Any) -> tuple[str, ...]:
    """Region names from a tuple or a comma-separated string; "all" alone means every region (an empty tuple)."""
    usage = "must be region names such as us-east-1, a comma-separated list of them, or all"
    parts = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Iterable):
        raise ConfigurationError(f"regions ({value!r}) {usage}")
    parts = tuple(parts)
    if not all(isinstance(r, str) and r.strip() for r in parts) or (isinstance(value, str) and not parts):
        raise ConfigurationError(f"regions ({value!r}) {usage}; a blank name is not a region")
    names = tuple(dict.fromkeys(r.strip() for r in parts))
    if any(name.lower() == "all" for name in names):
        if len(names) > 1:
            raise ConfigurationError(f"regions ({value!r}): 'all' already means every region; give it alone")
        return ()
    return names


def only_for(workload: Any, names: Iterable[str], allowed: bool, what: str) -> None:
    """Refuse any of the fields ``names`` that is set on ``workload`` when ``allowed`` is False."""
    for name in names:
        if not allowed and getattr(workload, name) is not None:
            raise ConfigurationError(f"{name} ({getattr(workload, name)!r}) applies to {what}; task is "
                                     f"{workload.task!r}")
