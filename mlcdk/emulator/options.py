"""What an emulator run deploys and how (:class:`EmulateOptions`), checked before anything starts."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlcdk.emulator.cdk import ACCOUNT
from mlcdk.emulator.checks import Check
from mlcdk.errors import ConfigurationError

_ACCOUNT = re.compile(r"\d{12}")
#: A context key as the CDK CLI takes it on ``-c``: no spaces, no ``=``.
_CONTEXT = re.compile(r"(?P<key>[^=\s]+)=(?P<value>.*)", re.S)


@dataclass(frozen=True)
class EmulateOptions:
    """What to deploy and how. Default: every stack of the app in the current directory (its cdk.json's app)."""

    #: The app's directory: where its command runs and where its cdk.json and node_modules are.
    directory: Path = field(default_factory=Path.cwd)
    #: The CDK CLI's ``--app``: a command, or a synthesized cloud assembly directory. None: cdk.json's ``app``.
    app: str | None = None
    #: CDK CLI stack patterns (``Stage/*``): the stacks they match and every stack those depend on deploy.
    #: Empty: every stack of the app.
    stacks: tuple[str, ...] = ()
    #: ``key=value`` context, as ``cdk -c``.
    context: tuple[str, ...] = ()
    #: Where stacks that leave their region open deploy.
    region: str = "us-east-1"
    #: The account the emulator plays; stacks that name another account are refused.
    account: str = ACCOUNT
    #: The CDK CLI to use. None: found as mlcdk.emulator.cdk describes.
    cdk: str | None = None
    #: What to do with the deployed stacks before the teardown (mlcdk.emulator.checks).
    checks: tuple[Check, ...] = ()
    #: Keep the run's temporary directory (moto.log, cdk.out) instead of removing it.
    keep: bool = False


def validate(options: EmulateOptions, names: Mapping[str, str] | None = None) -> None:
    """Raise ConfigurationError for a wrong field, naming it as ``names`` says (the CLI passes its flags)."""
    from mlcdk.params import check_fields
    from mlcdk.presets import catalog

    def name(field_name: str) -> str:
        return (names or {}).get(field_name, f"options.{field_name}")

    if not isinstance(options, EmulateOptions):
        raise ConfigurationError(f"options ({options!r}) must be an EmulateOptions(...)")
    check_fields("options", options)
    for pair in options.context:
        if not _CONTEXT.fullmatch(pair):
            raise ConfigurationError(f"{name('context')} ({pair!r}) must be KEY=VALUE, with a key without spaces")
    if not _ACCOUNT.fullmatch(options.account):
        raise ConfigurationError(f"{name('account')} ({options.account!r}) must be a 12-digit AWS account ID")
    catalog.default_catalog().check_region(options.region, name("region"))
