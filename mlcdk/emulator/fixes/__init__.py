"""Fixes for moto 5.2.5 bugs and gaps that stop a CDK stack from deploying, reading back or deleting.

One small function per fix, each declared with its row of the table (:class:`Fix`: name, what it patches, why,
and the moto source line). None changes what a template asks for. The same fixes serve both ways of running
moto: the emulator's server process applies them for its whole life, and tests apply them around
``mock_aws()``::

    from mlcdk.emulator.fixes import moto_fixes
    with moto_fixes(), mock_aws():
        ...

Every emulator run prints the table (:func:`lines`); docs/emulator.md shows it (:func:`markdown_table`), and
tests/integration/test_moto_fixes.py holds, for every fix, a check that fails without it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from mlcdk.emulator.fixes import batch, cloudformation, ecs
from mlcdk.emulator.fixes._patch import Fix, Patcher
from mlcdk.emulator.fixes.batch import api_shape

__all__ = ["FIXES", "Fix", "api_shape", "lines", "markdown_table", "moto_fixes"]

#: Every fix, in the order they apply.
FIXES: tuple[Fix, ...] = cloudformation.FIXES + batch.FIXES + ecs.FIXES


@contextlib.contextmanager
def moto_fixes(without: Iterable[str] = ()) -> Iterator[None]:
    """Apply the FIXES (all but those named in ``without``) to this process's moto modules; undo them on exit."""
    skipped = set(without)
    unknown = skipped - {f.name for f in FIXES}
    if unknown:
        raise ValueError(f"unknown moto fix(es): {', '.join(sorted(unknown))}")
    patcher = Patcher()
    try:
        for each in FIXES:
            if each.name not in skipped:
                each.apply(patcher)
        yield
    finally:
        patcher.undo()


def lines() -> list[str]:
    """The table as the emulator prints it: one line per fix."""
    return [each.line() for each in FIXES]


def markdown_table() -> str:
    """The table as docs/emulator.md shows it."""
    rows = ["| fix | patches | why | moto source (5.2.5) |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | `{f.patches}` | {f.why} | {f.source} |" for f in FIXES]
    return "\n".join(rows)
