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

try:  # typer 0.29 and later parse with a vendored copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - earlier typer parses with click itself
    from click import exceptions as _click_errors

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line and exit ``code``: 2 for a configuration or usage error, 1 for an unexpected one."""
    line = " ".join(str(message).splitlines())  # one line, whatever the message holds (a YAML error spans several)
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False, markup=True)
    raise typer.Exit(code)


def _plain_help_option(option: Any) -> Any:
    """--help is a flag: show no ``<bool>`` type next to it."""
    if option is not None:
        option.metavar = ""
    return option


class PlainFlagsCommand(typer.core.TyperCommand):
    """A command whose --help row shows no ``<bool>``; declare every other flag with ``metavar=""``."""

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))


class OneLineErrors(typer.core.TyperGroup):
    """The root command group: a usage error (an unknown option, a missing or malformed value) prints one line on
    stderr and exits 2, like a ConfigurationError, instead of click's usage block and typer's boxed panel."""

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
        except _click_errors.NoArgsIsHelpError:
            code = 2  # the help is already printed
        except _click_errors.ClickException as error:
            context = getattr(error, "ctx", None)
            where = f"; see '{context.command_path} --help'" if isinstance(error, _click_errors.UsageError) and context else ""
            message = " ".join(error.format_message().split())
            message = message.rstrip(".") if where else message
            err.print(f"[red]error:[/red] {escape(message)}{escape(where)}", highlight=False, markup=True)
            code = error.exit_code
        except typer.Abort:
            err.print("aborted", highlight=False, markup=False)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


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
