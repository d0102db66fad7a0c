"""What every moto fix is made of: a table row (:class:`Fix`) and a :class:`Patcher` that undoes what it set."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ABSENT = object()


class Patcher:
    """Sets attributes on moto's classes and modules; :meth:`undo` restores each one as it was, in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name``; on undo restore what ``owner`` itself held (or remove it if it held nothing)."""
        self._undo.append((owner, name, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, value)

    def set_if_missing(self, owner: Any, name: str, value: Any) -> None:
        """Set ``owner.name`` only where moto defines none on ``owner`` itself (a later moto may bring its own)."""
        if name not in owner.__dict__:
            self.set(owner, name, value)

    def undo(self) -> None:
        while self._undo:
            owner, name, previous = self._undo.pop()
            if previous is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)


def rewrite_properties(patch: Patcher, model: type, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Wrap ``model.create_from_cloudformation_json`` so that it sees ``rewrite(Properties)``: the way to fix how
    moto reads a resource's properties without copying its handler. Fixes on the same model stack up."""
    current = inspect.getattr_static(model, "create_from_cloudformation_json")

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        properties = rewrite(dict(cloudformation_json.get("Properties", {})))
        fixed = dict(cloudformation_json, Properties=properties)
        return current.__func__(cls, resource_name, fixed, account_id, region_name, **kwargs)

    patch.set(model, "create_from_cloudformation_json", classmethod(create))


@dataclass(frozen=True)
class Fix:
    """One row of the fixes table: what it patches, why, and where the bug is in moto's source."""

    name: str
    #: The moto attribute(s) it replaces or wraps.
    patches: str
    #: What goes wrong without it, and what the fix does instead.
    why: str
    #: The moto source line (5.2.5) or issue that shows the bug.
    source: str
    apply: Callable[[Patcher], None]

    def line(self) -> str:
        """The fix in one line, as every emulator run prints it."""
        return f"{self.name}: {self.why} [patches {self.patches}; {self.source}]"


def fix(name: str, *, patches: str, why: str, source: str) -> Callable[[Callable[[Patcher], None]], Fix]:
    """Declare a fix beside the function that applies it."""
    def declare(apply: Callable[[Patcher], None]) -> Fix:
        return Fix(name=name, patches=patches, why=" ".join(why.split()), source=" ".join(source.split()),
                   apply=apply)
    return declare
