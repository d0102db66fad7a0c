"""What every command group shares: the two consoles, the one-line error exit, and JSON output."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line and exit ``code``: 2 for a configuration or usage error, 1 for an unexpected one."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def plain(value: Any) -> Any:
    """Frozen dataclasses and read-only mappings as plain JSON values (dataclasses.asdict cannot copy those)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(plain(document), indent=1, sort_keys=True) + "\n")
