"""Run the real CDK CLI's ``cdk synth --quiet --no-notices`` for the app of a folder, into a cloud assembly folder.

The CLI is ``node_modules/.bin/cdk`` when the folder has one (this repository's pinned CLI, `npm ci`), else ``cdk``
on the PATH. Its output goes to stderr, so that a picture on stdout stays clean.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlcdk.errors import ConfigurationError

LOCAL_CLI = Path("node_modules") / ".bin" / "cdk"


def cdk_cli(folder: Path) -> list[str]:
    local = folder / LOCAL_CLI
    if local.is_file():
        return [str(local)]
    found = shutil.which("cdk")
    if found is None:
        raise ConfigurationError("--synth runs the AWS CDK CLI, which is not installed here (npm install aws-cdk); "
                                 "or run `cdk synth` yourself and leave --synth out")
    return [found]


def context_flags(context: Sequence[str]) -> list[str]:
    """``key=value`` items as `cdk synth` flags; ConfigurationError for an item that is not one."""
    for item in context:
        key, equals, _ = item.partition("=")
        if not equals or not key.strip() or key != key.strip():
            raise ConfigurationError(f"--context ({item!r}) must be key=value, e.g. -c nodes=4")
    return [f"--context={item}" for item in context]


def synth(outdir: Path, context: Sequence[str] = (), folder: Path = Path(".")) -> int:
    """`cdk synth --quiet` of the app in ``folder`` (its cdk.json) into ``outdir``; the CLI's exit status."""
    if not (folder / "cdk.json").is_file():
        raise ConfigurationError(f"--synth runs the CDK app that cdk.json names, and {folder.resolve()} has no "
                                 "cdk.json; run it in your CDK app's folder")
    command = [*cdk_cli(folder), "synth", "--quiet", "--no-notices", f"--output={outdir}", *context_flags(context)]
    try:
        return _run(command, folder)
    except OSError as error:  # the CLI's file exists but cannot be run (no node, no permission)
        raise ConfigurationError(f"--synth could not run {command[0]}: {error.strerror or error}") from None


def _run(command: list[str], folder: Path) -> int:
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a file (a test runner's): relay the output
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        sys.stderr.write(result.stdout + result.stderr)
        return result.returncode
    return subprocess.run(command, cwd=folder, stdout=sys.stderr, check=False).returncode
