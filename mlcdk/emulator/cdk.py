"""The CDK CLI the emulator drives, and the environment every child runs in.

Which CDK CLI, in this order (the first that exists wins, and the run's header says which):

1. ``--cdk PATH`` (or the ``MLCDK_CDK`` environment variable);
2. ``node_modules/.bin/cdk`` in the app's directory (``npm install --save-dev aws-cdk@^2.1148.1`` there);
3. ``cdk`` on ``PATH``.

None found is a usage error that prints the install command. npm's ``latest`` tag points at an old 3.0.0 build
that cannot read the cloud assembly aws-cdk-lib 2.27x writes; a CLI that fails that way gets the same hint.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcdk.emulator import processes
from mlcdk.emulator.failures import Unavailable, failed

#: The CDK CLI release mlcdk is tested with (package.json pins the same; a test keeps them equal).
CDK_CLI_PACKAGE = "aws-cdk@^2.1148.1"
INSTALL_HINT = (f"install the CDK CLI mlcdk is tested with in the app's directory: npm install --save-dev "
                f"{CDK_CLI_PACKAGE} (npm's 'latest' is an old 3.0.0 build that cannot read aws-cdk-lib 2.27x's "
                "cloud assembly)")
CDK_TIMEOUT_S = 300
#: The account the emulator plays (moto's default).
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class CdkCli:
    path: str
    #: How it was found, for the run's header.
    found: str


def find_cdk(explicit: str | None, directory: Path) -> CdkCli:
    """The CDK CLI to use for the app in ``directory`` (see the module docstring for the order)."""
    source = "--cdk" if explicit else "MLCDK_CDK"
    explicit = explicit or os.environ.get("MLCDK_CDK")
    if explicit:
        located = shutil.which(explicit)
        if located is None:
            raise Unavailable(f"{source}: {explicit!r} is not an executable file")
        return CdkCli(located, source)
    local = directory / "node_modules" / ".bin" / "cdk"
    if local.is_file() and os.access(local, os.X_OK):
        return CdkCli(str(local), "the app directory's node_modules")
    on_path = shutil.which("cdk")
    if on_path:
        return CdkCli(on_path, "PATH")
    raise Unavailable(f"no CDK CLI found (looked at --cdk, MLCDK_CDK, {local} and PATH); {INSTALL_HINT}")


def environment(endpoint: str, region: str, *, directory: Path, tmp: Path, run_id: str) -> dict[str, str]:
    """The environment of every child: the user's, without any AWS_* or CDK_* variable (no profile, credentials,
    config file or endpoint of theirs can leak in), plus dummy credentials and the emulator's endpoint. Temporary
    files go to ``tmp``, inside the run's directory, so that nothing outlives the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    bin_dirs = [str(Path(sys.executable).parent), str(directory / "node_modules" / ".bin")]
    env.update({
        "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "/usr/bin:/bin")]),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": "/nonexistent/mlcdk-emulator-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/mlcdk-emulator-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(tmp),
        processes.RUN_MARKER: run_id,
    })
    return env


def _reason(label: str, code: int, output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line.strip() for line in lines if "❌" in line or "Error" in line or "error" in line]
    reason = " / ".join(errors[-3:]) if errors else f"its output ends: {processes.last_lines(output)}"
    if "Maximum schema version supported" in output:
        reason += f"; this CDK CLI is older than the app's aws-cdk-lib: {INSTALL_HINT}"
    return f"{label} ({processes.exit_text(code)}): {reason}"


def run_cdk(cli: CdkCli, step_name: str, label: str, args: Sequence[str], env: dict[str, str], *,
            cwd: Path) -> str:
    """Run the CDK CLI under a guard; print one status line; on failure show its last lines and raise a Failure
    naming the step. Returns its output."""
    started = time.monotonic()
    print(f"==> {label} ...", flush=True)
    result = processes.run([cli.path, *args], env=env, cwd=cwd, step=processes.Step(step_name, label, CDK_TIMEOUT_S))
    output = result.stdout
    if result.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        print("\n".join(f"    | {line}" for line in lines[-25:]), file=sys.stderr)
        raise failed(step_name, _reason(label, result.returncode, output))
    print(f"    ok ({time.monotonic() - started:.1f} s)", flush=True)
    return output
