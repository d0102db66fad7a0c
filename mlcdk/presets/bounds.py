"""The range of every public number, duration and string, from ``data/bounds.json`` (pure Python, no aws_cdk).

mlcdk.params checks each parameter and option field against the bound its name finds here, before any resource
exists: ``hourly_price_usd=1e12`` or ``storage_capacity_gib=2_400_000_000`` fail at synth with the range and why.
A name is looked up exactly (the field's own name, ``data_volume_size_gib``), then by its unit suffix
(``_percent``). Strings all have a length bound (``text``: a default, and larger ones for commands). New option
groups get their bounds by adding their fields' names to the data file; tests/test_bounds.py fails for any
public number or duration that has none.

>>> from mlcdk.presets import bounds
>>> bounds.number("storage.data_volume_size_gib").problem(70000, whole=True)
'must be a whole number from 1 to 16384 (gp3 volumes are 1 GiB to 16 TiB)'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from mlcdk.presets import datafile
from mlcdk.presets.datafile import DATA_DIR

DATA_FILE = DATA_DIR / "bounds.json"
_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Bound:
    """A closed range [low, high] (``low_exclusive``: (low, high]), with its unit, source and reason."""

    name: str
    low: float
    high: float
    low_exclusive: bool
    unit: str
    source: str
    reason: str

    def allows(self, value: float) -> bool:
        return (value > self.low if self.low_exclusive else value >= self.low) and value <= self.high

    def describe(self, *, whole: bool) -> str:
        """``a whole number from 1 to 512``, ``a number above 0 and at most 1000``."""
        kind = "a whole number" if whole else "a number"
        if self.low_exclusive:
            return f"{kind} above {_figure(self.low)} and at most {_figure(self.high)}"
        return f"{kind} from {_figure(self.low)} to {_figure(self.high)}"

    def problem(self, value: float, *, whole: bool) -> str | None:
        """Why ``value`` is outside the range (what is allowed and why), or None."""
        return None if self.allows(value) else f"must be {self.describe(whole=whole)} ({self.reason})"


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def field_name(parameter: str) -> str:
    """The field a parameter path names: ``shared_storage.data_repositories[0].s3_uri`` -> ``s3_uri``."""
    return _INDEX.sub("", parameter).split(".")[-1]


@functools.cache
def table() -> Mapping[str, Mapping[str, Bound]]:
    """Every bound of the data file, by section (numbers, suffixes, durations, text) and name."""
    with datafile.reading(DATA_FILE):
        document = datafile.read_document(DATA_FILE)
        return MappingProxyType({section: MappingProxyType({name: _bound(name, entry) for name, entry in
                                                            document[section].items()})
                                 for section in ("numbers", "suffixes", "durations", "text")})


def _bound(name: str, entry: Mapping[str, Any]) -> Bound:
    low, high = entry["min"], entry["max"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
        raise datafile.error(DATA_FILE, f"{name}: min ({low!r}) and max ({high!r}) must be numbers, min <= max")
    if not (isinstance(entry["source"], str) and entry["source"] and isinstance(entry["reason"], str) and entry["reason"]):
        raise datafile.error(DATA_FILE, f"{name}: every bound needs a source and a reason")
    return Bound(name, float(low), float(high), bool(entry.get("min_exclusive", False)), str(entry["unit"]),
                 entry["source"], entry["reason"])


def number(parameter: str) -> Bound | None:
    """The bound of a number parameter, by its field's name, then its unit suffix; None when it has none."""
    name = field_name(parameter)
    found = table()["numbers"].get(name)
    if found is None:
        found = next((b for suffix, b in table()["suffixes"].items() if name.endswith(suffix)), None)
    return found


def duration(parameter: str) -> Bound | None:
    """The bound, in seconds, of a duration parameter (a ``cdk.Duration``), or None."""
    return table()["durations"].get(field_name(parameter))


def text(parameter: str) -> Bound:
    """The length bound of a string parameter: its own, else the default."""
    texts = table()["text"]
    return texts.get(field_name(parameter), texts["default"])
