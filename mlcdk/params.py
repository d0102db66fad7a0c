"""One check of every public parameter against its annotation, before any resource exists.

The constructs' ``__init__`` carry :func:`checked`; it binds the call, reads the annotations, and checks each
given value. Option groups (the frozen dataclasses in ``mlcdk.constructs.options`` and the fleet's) are
checked field by field, under the parameter's name (``purchase.option``). Anything the rules below do not
cover is handed to typeguard (a dependency of jsii). A failure is a :class:`mlcdk.ConfigurationError` that
names the parameter, the value and what is allowed; nothing reaches jsii with a wrong type, so no TypeError
and no NaN (which kills the jsii kernel) gets through.

The rules, beyond "an instance of the annotated type":

- ``bool`` takes only True or False: "false", 0 and None are refused.
- ``int`` takes whole numbers, never a bool or a float (``nodes=4.0`` is refused).
- ``float`` takes ints and floats that are finite (NaN and infinity are refused), never a bool.
- ``str`` must not be blank, and must not start or end with whitespace (values are never stripped silently),
  except free text (shell commands, :data:`FREE_TEXT`), which is used exactly as given.
- A sequence (``Sequence[str]``, ``tuple[str, ...]``) must be a list or tuple: a single string is refused,
  naming the whole string, since it would be read one character at a time.
- An option group must be an instance of its class; a dict is refused (write ``PurchaseOptions(...)``).
- aws-cdk types (``cdk.Duration``, ``cdk.RemovalPolicy``, ``ec2.IVpc``...) must be aws-cdk objects: a plain
  string, number, dict or list is refused with the class to use.
- A CDK token (a value resolved at deploy time) passes unchecked, as aws-cdk does; the constructs refuse
  tokens where a concrete value decides the shape (``nodes``).
- Every number, duration and string has a range (:mod:`mlcdk.presets.bounds`, from ``data/bounds.json``, each
  with its source): sizes, prices, counts and durations have upper bounds from AWS's own limits (or mlcdk's
  ceiling against typos where AWS states none), strings a length bound. Strings hold no control or format
  characters (a trailing newline, a NUL, a bidi override); free text may hold newlines and tabs.
- An error shows a bounded representation of the value (:func:`mlcdk.errors.shown`), never the whole of it.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import math
import sys
import types
import typing
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from mlcdk.errors import ConfigurationError, shown
from mlcdk.presets import bounds

_PRIMITIVES = (str, bytes, int, float, bool, dict, list, tuple, set, frozenset)
#: Free-text parameters (shell commands): used exactly as given, so surrounding whitespace is allowed.
FREE_TEXT = frozenset({"user_data_commands", "model_server_command"})
_SEQUENCES = (collections.abc.Sequence, tuple, list)
#: Unicode categories refused in strings: control, format (bidi overrides, zero-width), surrogate, line and
#: paragraph separators. Free text may still hold newlines and tabs.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: How aws-cdk encodes a string token ("${Token[AWS.Region.6]}") and a list token inside Python values.
STRING_TOKEN, LIST_TOKEN = "${Token[", "#{Token["


def checked(function: Callable) -> Callable:
    """Decorate a constructor: every argument is checked against its annotation before the body runs."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:  # an unknown keyword or a missing argument
            raise ConfigurationError(f"{function.__qualname__.split('.')[0]}: {error}") from None
        hints = _hints(function)
        for name, value in bound.arguments.items():
            if name in ("self", "scope", "construct_id") or name not in hints:
                continue
            check_value(name, value, hints[name])
        return function(*args, **kwargs)

    return wrapper


def check_value(name: str, value: Any, hint: Any) -> None:
    """Raise ConfigurationError unless ``value`` fits ``hint``; option groups are checked field by field."""
    if _is_token(value):
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        _check_union(name, value, args)
        return
    if hint is Any or hint is object:
        return
    if origin is typing.Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args):
            raise _wrong(name, value, "one of " + ", ".join(repr(a) for a in args))
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong(name, value, "True or False (a bool; strings and numbers are not taken as booleans)")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(name, value, "a whole number (an int)")
        _check_bound(name, value, whole=True)
        return
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(name, value, "a number")
        if not math.isfinite(value):
            raise _wrong(name, value, "a finite number (not NaN or infinity)")
        _check_bound(name, value, whole=False)
        return
    if hint is str:
        _check_text(name, value)
        return
    if origin in _SEQUENCES or hint in _SEQUENCES:
        _check_sequence(name, value, hint, origin, args)
        return
    if origin in (dict, collections.abc.Mapping) or hint in (dict, collections.abc.Mapping):
        if not isinstance(value, collections.abc.Mapping):
            raise _wrong(name, value, "a mapping")
        if len(args) == 2:
            for key, item in value.items():
                check_value(f"{name}[{key!r}]", key, args[0])
                check_value(f"{name}[{key!r}]", item, args[1])
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            how = " (option groups are not taken as dicts)" if isinstance(value, Mapping) else ""
            raise _wrong(name, value, f"a {hint.__name__}(...){how}")
        check_fields(name, value)
        return
    if isinstance(hint, type) and _from_cdk(hint):
        _check_cdk(name, value, hint)
        return
    _typeguard(name, value, hint)


def _check_bound(name: str, value: float, *, whole: bool) -> None:
    bound = bounds.number(name)
    problem = bound.problem(value, whole=whole) if bound is not None else None
    if problem:
        raise ConfigurationError(f"{name} ({shown(value)}) {problem}")


def _check_text(name: str, value: Any) -> None:
    """A string: not blank, not padded (except free text), within its length bound, no control characters."""
    if not isinstance(value, str):
        raise _wrong(name, value, "a string")
    free = bounds.field_name(name) in FREE_TEXT
    limit = bounds.text(name)
    if len(value) > limit.high:
        raise _wrong(name, value, f"at most {int(limit.high):,} characters ({limit.reason})")
    if not value.strip():
        raise _wrong(name, value, "a non-blank string")
    if value != value.strip() and not free:
        raise _wrong(name, value, "a string without leading or trailing whitespace")
    bad = next((c for c in value if unicodedata.category(c) in _REFUSED_CATEGORIES and not (free and c in "\n\t")), None)
    if bad is not None:
        where = "" if free else "; only free text (commands) may hold newlines and tabs"
        raise _wrong(name, value, f"a string without control or format characters (it holds {bad!r}{where})")


def check_fields(name: str, options: Any) -> None:
    """Check every field of the option group ``options`` (a dataclass instance), as ``name.field``."""
    hints = _hints(type(options))
    for field in dataclasses.fields(options):
        if field.name in hints:
            check_value(f"{name}.{field.name}", getattr(options, field.name), hints[field.name])


# --------------------------------------------------------------------------------------------


def _check_union(name: str, value: Any, args: tuple) -> None:
    if value is None:
        if type(None) in args:
            return
        raise _wrong(name, value, " or ".join(_describe(a) for a in args))
    candidates = [a for a in args if a is not type(None)]
    errors = []
    for candidate in candidates:
        try:
            check_value(name, value, candidate)
            return
        except ConfigurationError as error:
            errors.append((candidate, error))
    # One alternative of the right kind explains best (e.g. "finite"); otherwise list them all.
    same_kind = [e for c, e in errors if _kind_matches(value, c)]
    if len(same_kind) == 1:
        raise same_kind[0]
    allowed = " or ".join(_describe(a) for a in args)
    raise _wrong(name, value, allowed)


def _check_sequence(name: str, value: Any, hint: Any, origin: Any, args: tuple) -> None:
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(
            f"{name} ({value!r}) must be a list or tuple of {_describe(args[0]) if args else 'items'}, not one "
            f"string (it would be read one character at a time); write [{value!r}]")
    if not isinstance(value, (list, tuple)):
        raise _wrong(name, value, f"a list or tuple of {_describe(args[0]) if args else 'items'}")
    if not args:
        return
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise _wrong(name, value, f"a tuple of {len(args)} items")
        for index, (item, item_hint) in enumerate(zip(value, args)):
            check_value(f"{name}[{index}]", item, item_hint)
        return
    for index, item in enumerate(value):
        check_value(f"{name}[{index}]", item, args[0])


def _check_cdk(name: str, value: Any, hint: type) -> None:
    """aws-cdk and constructs types: enums and classes by isinstance; jsii interfaces (Protocols) refuse only
    what can never implement them (plain Python values)."""
    label = _cdk_label(hint)
    example = f" (e.g. {label}.{next(iter(hint.__members__))})" if hasattr(hint, "__members__") else ""
    if getattr(hint, "_is_protocol", False):
        if isinstance(value, _PRIMITIVES) or value is None:
            raise _wrong(name, value, f"an aws-cdk {label}")
        return
    if not isinstance(value, hint):
        raise _wrong(name, value, f"an aws-cdk {label}{example}")
    if label == "Duration" and (bound := bounds.duration(name)) is not None and not value.is_unresolved():
        millis = value.to_milliseconds(integral=False)
        if millis % 1000 or not bound.allows(millis / 1000):
            raise ConfigurationError(
                f"{name} ({value.to_human_string()}) must be a whole number of seconds from {_figure(bound.low)} s to "
                f"{_figure(bound.high)} s ({bound.reason})")


def _figure(seconds: float) -> str:
    return f"{int(seconds):,}" if float(seconds).is_integer() else f"{seconds:g}"


def _cdk_label(hint: type) -> str:
    """``Duration`` for aws_cdk's core types, ``ec2.IVpc`` for a service module's, as the README writes them."""
    module = hint.__module__
    if module.startswith("aws_cdk.aws_"):
        return f"{module.split('.')[-1].removeprefix('aws_')}.{hint.__name__}"
    return hint.__name__


def _typeguard(name: str, value: Any, hint: Any) -> None:
    import typeguard

    try:
        if hasattr(typeguard, "TypeCheckError"):  # typeguard 3+
            typeguard.check_type(value, hint)
        else:  # typeguard 2.x, as jsii pins it
            typeguard.check_type(name, value, hint)
    except (TypeError, getattr(typeguard, "TypeCheckError", TypeError)):
        raise _wrong(name, value, _describe(hint)) from None


def _wrong(name: str, value: Any, allowed: str) -> ConfigurationError:
    return ConfigurationError(f"{name} ({shown(value)}) must be {allowed}")


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if hint is bool:
        return "True or False"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "a string"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _SEQUENCES:
        return f"a list or tuple of {_describe(args[0]) if args else 'items'}"
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_describe(a) for a in args)
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return f"a {hint.__name__}(...)"
        if _from_cdk(hint):
            return f"an aws-cdk {_cdk_label(hint)}"
        return f"a {hint.__name__}"
    return str(hint)


def _kind_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the broad kind ``hint`` asks for (so that alternative's error explains best)."""
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (int, bool, str):
        return type(value) is hint
    origin = typing.get_origin(hint)
    if origin in _SEQUENCES:
        return isinstance(value, (list, tuple, str))
    if getattr(hint, "_is_protocol", False):  # a jsii interface: no isinstance on it
        return not isinstance(value, _PRIMITIVES) and value is not None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return False


def _from_cdk(hint: type) -> bool:
    module = getattr(hint, "__module__", "") or ""
    return module.startswith(("aws_cdk", "constructs"))


def _is_token(value: Any) -> bool:
    """A CDK token (only possible once aws_cdk is loaded): never type-checked here."""
    if "aws_cdk" not in sys.modules or isinstance(value, (bool, int)) or value is None:
        return False
    if isinstance(value, str):
        return STRING_TOKEN in value
    if isinstance(value, float) and math.isfinite(value):
        import aws_cdk as cdk

        return cdk.Token.is_unresolved(value)
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        return LIST_TOKEN in value[0]
    return False


@functools.cache
def _hints(target: Any) -> dict[str, Any]:
    return typing.get_type_hints(target)
