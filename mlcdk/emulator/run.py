"""One emulator run: synthesize the app, deploy the stacks its cloud assembly names to a moto server with the
real CDK CLI, read them back, run the checks, tear everything down, and leave nothing behind.

Steps (each failure is one line naming its step): start moto, synth, bootstrap, deploy, read back, the checks
(e.g. submit, wait for job), destroy. Every process the run starts ends with it (see ``processes``); its files
live in one temporary directory (the children's ``TMPDIR`` included) that is removed at the end, or, if the
driver is killed, by the moto server on its way out.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mlcdk.emulator import assembly, processes, server
from mlcdk.emulator.cdk import CdkCli, environment, find_cdk, run_cdk
from mlcdk.emulator.checks import Deployment
from mlcdk.emulator.failures import Failure, Interrupted, Unavailable, failed, step
from mlcdk.emulator.options import EmulateOptions, validate
from mlcdk.emulator.readback import describe_stack
from mlcdk.emulator.session import Session
from mlcdk.emulator.teardown import teardown
from mlcdk.errors import ConfigurationError

EXTRA_HINT = "mlcdk emulate needs the emulator extra (moto): pip install 'mlcdk[emulator]'"


def _check_ready(options: EmulateOptions) -> CdkCli:
    """What must be there before anything starts: valid options, moto (the extra), an app, a CDK CLI."""
    try:
        validate(options)
    except ConfigurationError as error:
        raise Unavailable(str(error)) from None
    try:
        import moto  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as error:
        raise Unavailable(f"{EXTRA_HINT} ({error})") from None
    if not options.directory.is_dir():
        raise Unavailable(f"the app directory {options.directory} does not exist")
    if options.app is None:
        cdk_json = options.directory / "cdk.json"
        if not cdk_json.is_file():
            raise Unavailable(f"no --app given and no cdk.json in {options.directory}")
        if not json.loads(cdk_json.read_text()).get("app"):
            raise Unavailable(f"{cdk_json} names no app (its \"app\" key); pass --app")
    return find_cdk(options.cdk, options.directory)


def _start_moto(run: Session) -> None:
    import moto

    tmp = run.work / "tmp"
    tmp.mkdir()
    with step("start moto"):
        endpoint_port = server.free_port()
        run.env = environment(f"http://localhost:{endpoint_port}", run.options.region, directory=run.options.directory,
                              tmp=tmp, run_id=run.run_id)
        run.moto = server.start(run.work, dict(run.env, MOTO_ACCOUNT_ID=run.options.account),
                                clean_up=None if run.options.keep else run.work, port=endpoint_port)
    print(f"==> moto {moto.__version__} server on {run.moto.endpoint} (pid {run.moto.process.pid}, log {run.moto.log}, "
          f"run {run.run_id})", flush=True)
    _print_header(run)
    server.wait_until_up(run.moto.url, run.moto.process, run.moto.log)
    with step("start moto"):
        server.configure(run.moto)


def _print_header(run: Session) -> None:
    from mlcdk.emulator.fixes import lines

    print("    with fixes for moto gaps (mlcdk.emulator.fixes; the table is in docs/emulator.md):")
    for line in lines():
        print(f"    - {line}")
    print(f"    tied to this driver: " + ("PR_SET_PDEATHSIG and a lifeline pipe" if processes.has_pdeathsig()
                                          else "a lifeline pipe (no prctl here)"))
    print(f"    account {run.options.account}, default region {run.options.region}; CDK CLI {run.cli.path} "
          f"(from {run.cli.found})", flush=True)


def _synth(run: Session) -> None:
    """``cdk synth`` the app into the run's directory (an ``--app`` that is a cloud assembly already is copied
    there), then read which stacks it names and select those to deploy."""
    options = run.options
    given = options.directory / options.app if options.app else None
    if given is not None and (given / "manifest.json").is_file():
        print(f"==> cloud assembly {given} (copied; no synth)", flush=True)
        with step("synth"):
            shutil.copytree(given, run.outdir)
    else:
        flags = [arg for pair in options.context for arg in ("-c", pair)]
        app = ["--app", options.app] if options.app else []
        run_cdk(run.cli, "synth", "cdk synth", ["synth", *app, *flags, "--output", str(run.outdir), "--quiet",
                                                "--no-notices"], run.env, cwd=options.directory)
    with step("synth"):
        found = assembly.read(run.outdir, options.region)
    run.stacks = assembly.select(found, options.stacks)
    account = assembly.accounts(run.stacks)
    if account != options.account:
        raise Unavailable(f"stack(s) {', '.join(s.display_name for s in run.stacks if s.account == account)} deploy "
                          f"to account {account}; the emulator plays {options.account}: pass --account {account}")
    print(f"    stacks: {', '.join(s.display_name for s in run.stacks)} (of {len(found)} in the assembly)", flush=True)


def _deploy(run: Session) -> None:
    targets = sorted({f"aws://{s.account}/{s.region}" for s in run.stacks})
    bootstrap_dir = run.work / "bootstrap"  # no cdk.json there: the CLI does not synthesize an app first
    bootstrap_dir.mkdir()
    run_cdk(run.cli, "bootstrap", "cdk bootstrap " + " ".join(targets), ["bootstrap", *targets, "--no-notices"],
            run.env, cwd=bootstrap_dir)
    names = [s.display_name for s in run.stacks]
    run_cdk(run.cli, "deploy", "cdk deploy " + " ".join(names),
            ["deploy", "--app", str(run.outdir), *names, "--exclusively", "--require-approval", "never",
             "--no-notices"], run.env, cwd=run.work)


def _read_back(run: Session) -> None:
    with step("read back"):
        for stack in run.stacks:
            run.views[stack.display_name] = describe_stack(run.clients(stack.region), stack.name, stack.display_name,
                                                           stack.template())
    failed_stacks = [f"{name} is {view.description['StackStatus']}" for name, view in run.views.items()
                     if view.description["StackStatus"] != "CREATE_COMPLETE"]
    if failed_stacks:
        raise failed("deploy", "stacks did not complete: " + "; ".join(failed_stacks))


def _run_checks(run: Session) -> None:
    deployment = Deployment(run.moto.endpoint, run.options.region, dict(run.env), run.options.directory,
                            run.clients(), dict(run.views))
    for check in run.options.checks:
        with step(check.name):
            check.run(deployment)


def emulate(options: EmulateOptions, run_id: str | None = None) -> None:
    """One whole run (see the module docstring). Raises Unavailable (a usage error), Failure or Interrupted.
    ``run_id`` (default: MLCDK_EMULATOR_RUN's value, else a new one) marks every process of the run."""
    cli = _check_ready(options)
    work = Path(tempfile.mkdtemp(prefix="mlcdk-emulate-"))
    run = Session(options, cli, work, run_id or os.environ.get(processes.RUN_MARKER) or uuid.uuid4().hex)
    succeeded = False
    try:
        _start_moto(run)
        _synth(run)
        _deploy(run)
        _read_back(run)
        _run_checks(run)
        print()
        teardown(run)
        succeeded = True
    finally:
        if run.moto is not None:
            server.stop(run.moto)
        processes.stop_all()
        if run.moto is not None:
            print(f"==> moto server stopped (pid {run.moto.process.pid}, {processes.exit_text(run.moto.process.returncode)})")
        if options.keep:
            print(f"    kept: {work} (moto.log, cdk.out)")
        else:
            shutil.rmtree(work, ignore_errors=True)
            print(f"    removed the run's directory {work}" + ("" if succeeded else " (pass --keep to keep it)"))


def _on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


def main(options: EmulateOptions, run_id: str | None = None) -> int:
    """Run and report: 0 success; 1 a step failed (one ``error: <step> failed: <cause>`` line); 2 something the run
    needs is missing (one line); 128+N interrupted by signal N. Prints the total wall time."""
    started = time.monotonic()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        emulate(options, run_id)
    except Unavailable as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except Failure as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except Interrupted as interrupt:
        print(f"error: interrupted by {processes.signal_name(interrupt.args[0])}; stopped what this run had started",
              file=sys.stderr)
        code = 128 + interrupt.args[0]
    except Exception as error:  # a bug of the emulator: still one line, with its type
        print(f"error: unexpected {type(error).__name__} outside any step: {error}", file=sys.stderr)
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code != 2:  # a usage error is its one line
        print(f"Total wall time: {time.monotonic() - started:.1f} s")
    return code
