"""The one reader of data files: mlcdk's bundled facts, a refreshed catalog, and users' preset files.

Pure Python (no aws_cdk). JSON, or YAML by a ``.yaml``/``.yml`` suffix. Every read is bounded before anything
is parsed, so no file can exhaust memory or hang a parser:

- the file must be a regular file (not /dev/zero, a FIFO or a directory) of at most ``limits.max_bytes``;
- it is UTF-8, with or without a byte-order mark;
- a mapping may not repeat a key (JSON and YAML would silently keep the last), and in YAML every key must be a
  string (``1:``, ``null:``, ``yes:`` are read as an int, None and True, which would become names);
- nesting is at most ``limits.max_depth`` deep; YAML aliases are at most ``limits.max_aliases``, and the
  document they expand to at most ``limits.max_values`` values (a "billion laughs" document is refused before
  it is built), and an alias may not refer to its own anchor;
- numbers are finite (no NaN, Infinity, ``.inf``) and integers have at most ``MAX_INTEGER_DIGITS`` digits
  (Python's int() refuses 4,300).

Entries become frozen dataclasses through :class:`EntryReader`, which checks each entry's field names and types
(every typed reader under ``mlcdk.presets`` uses it). The limits themselves are in
:mod:`mlcdk.presets.file_limits`, shared with the YAML half (:mod:`mlcdk.presets.yaml_loader`).

Errors are ConfigurationErrors that name the file, show a bounded part of any value (:func:`mlcdk.errors.shown`)
and, for mlcdk's own files, say how to fix them (:func:`fix_for`: ``mlcdk catalog refresh`` for a catalog
snapshot, a reinstall for the other bundled files).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlcdk.errors import ConfigurationError, shown
from mlcdk.presets.file_limits import DATA_FILE, MAX_INTEGER_DIGITS, PRESET_FILE, Limits

__all__ = ["DATA_DIR", "DATA_FILE", "MAX_INTEGER_DIGITS", "PRESET_FILE", "SNAPSHOT_FILES", "EntryReader", "Limits", "error",
           "fix_for", "limits_for", "read_document", "read_mapping", "read_text", "reading"]

#: The bundled data files (catalog snapshot and hand-curated tables); ``catalog.DATA_DIR`` is this one.
DATA_DIR = Path(__file__).parent / "data"
#: The catalog snapshot's files, which ``mlcdk catalog refresh`` writes.
SNAPSHOT_FILES = ("instance_types.json", "offerings.json", "prices.json")
_BOM = b"\xef\xbb\xbf"


def limits_for(path: Path) -> Limits:
    """DATA_FILE for mlcdk's own files (bundled, or a catalog snapshot), PRESET_FILE for anything else."""
    path = Path(path)
    own = path.name in SNAPSHOT_FILES or path.parent.resolve() == DATA_DIR.resolve()
    return DATA_FILE if own else PRESET_FILE


def fix_for(path: Path) -> str:
    """How to repair ``path``, for an error message (empty for a user's own file)."""
    path = Path(path)
    if path.name in SNAPSHOT_FILES:
        return ("rebuild the catalog snapshot with `mlcdk catalog refresh` (and point MLCDK_CATALOG at its output), "
                "or unset MLCDK_CATALOG to use the bundled one")
    if path.parent.resolve() == DATA_DIR.resolve():
        return "the file bundled with mlcdk is damaged: reinstall mlcdk (pip install --force-reinstall mlcdk)"
    return ""


def error(path: Path, problem: str) -> ConfigurationError:
    """A ConfigurationError naming ``path``, the problem, and the fix where mlcdk knows one."""
    fix = fix_for(path)
    return ConfigurationError(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn a lookup on the wrong shape of document (KeyError, TypeError, ...) into an error naming the file."""
    try:
        yield
    except ConfigurationError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise error(path, f"unexpected content ({type(exc).__name__}: {shown(str(exc))})") from exc


def read_text(path: Path, limits: Limits) -> str:
    """The file's text: a regular file of at most ``limits.max_bytes``, UTF-8 with an optional BOM."""
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise error(path, "is not a regular file")
        with open(path, "rb") as file:
            data = file.read(limits.max_bytes + 1)
    except OSError as exc:
        raise error(path, f"cannot read ({exc.strerror})") from exc
    if len(data) > limits.max_bytes:
        raise error(path, f"is larger than {limits.max_bytes:,} bytes, the most this kind of file may hold")
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from exc


def read_document(path: Path, limits: Limits | None = None) -> Any:
    """The parsed document of ``path``: YAML by its suffix, else JSON, within ``limits`` (default:
    :func:`limits_for` the path)."""
    path = Path(path)
    limits = limits or limits_for(path)
    text = read_text(path, limits)
    yaml_file = path.suffix.lower() in (".yaml", ".yml")
    try:
        document = _yaml(text, limits) if yaml_file else _json(text)
    except _Refused as exc:
        raise error(path, str(exc)) from None
    except RecursionError:
        raise error(path, f"is nested more than {limits.max_depth} levels deep") from None
    except Exception as exc:  # yaml.YAMLError and json's ValueError both name the line
        kind = "YAML" if yaml_file else "JSON"
        text = " ".join(str(exc).split())  # one line; the parser's message names the line and column
        raise error(path, f"not valid {kind}: {text[:300]}{'...' if len(text) > 300 else ''}") from exc
    if not yaml_file:
        try:
            _check_depth(document, limits.max_depth)
        except _Refused as exc:
            raise error(path, str(exc)) from None
    return document


def read_mapping(path: Path, key: str, limits: Limits | None = None) -> dict:
    """The ``key`` mapping at the top of ``path`` (``{"presets": {name: entry}}``)."""
    path = Path(path)
    document = read_document(path, limits)
    if not isinstance(document, dict) or not isinstance(document.get(key), dict):
        raise error(path, f"expected a top-level {key!r} mapping of name -> entry")
    return document[key]


class EntryReader:
    """Checks one entry's field names and types; errors name the file, the entry and the field.

    ``read = EntryReader(path, "models['llama']", entry, {"params": (int, float), ...})``, then
    ``read("params", (int, float))`` is the field, type-checked (a bool is never an int), and
    ``read("note", str, None)`` an optional one. Every typed reader of a data file builds its frozen dataclasses
    this way.
    """

    def __init__(self, path: Path, where: str, entry: Any, fields: Mapping[str, Any]) -> None:
        self.path, self.where = path, where
        if not isinstance(entry, dict):
            raise error(path, f"{where}: expected a mapping of fields, got {type(entry).__name__}")
        unknown = sorted(set(entry) - set(fields))
        if unknown:
            raise error(path, f"{where}: unknown field {shown(unknown[0])}; allowed: {', '.join(sorted(fields))}")
        self.entry = entry

    def error(self, name: str, message: str) -> ConfigurationError:
        return error(self.path, f"{self.where}: field {name!r} {message}")

    def __call__(self, name: str, kind: Any = None, default: Any = ...) -> Any:
        if name not in self.entry:
            if default is ...:
                raise error(self.path, f"{self.where}: missing field {name!r}")
            return default
        value = self.entry[name]
        if kind is not None:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise self.error(name, f"should be {'/'.join(k.__name__ for k in kinds)}, got {shown(value)}")
        return value


# --------------------------------------------------------------------------------------------


class _Refused(ValueError):
    """A document that parses but breaks a rule above (the message says which)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    mapping: dict = {}
    for key, value in pairs:
        if key in mapping:
            raise _Refused(f"the key {shown(key)} appears twice in one mapping (the last would silently win)")
        mapping[key] = value
    return mapping


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"the integer {shown(text)} has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {shown(text)} is not finite")
    return value


def _constant(text: str) -> float:
    raise _Refused(f"{text} is not a number that mlcdk takes (numbers must be finite)")


def _json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs, parse_int=_integer, parse_float=_finite,
                      parse_constant=_constant)


def _check_depth(document: Any, max_depth: int) -> None:
    """Refuse a parsed document nested deeper than ``max_depth`` (iteratively: no recursion on its depth)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise _Refused(f"is nested more than {max_depth} levels deep")
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))


def _yaml(text: str, limits: Limits) -> Any:
    from mlcdk.presets import yaml_loader  # PyYAML is imported only for YAML files

    try:
        return yaml_loader.load(text, limits)
    except yaml_loader.Refused as exc:
        raise _Refused(str(exc)) from None
