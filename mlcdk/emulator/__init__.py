"""``mlcdk emulate``: deploy any CDK app to a local AWS emulator (moto) with the real CDK CLI, read back what was
created, run checks, tear it all down, and leave nothing behind.

Needs the emulator extra (``pip install 'mlcdk[emulator]'``: moto's server) and a CDK CLI (see
:mod:`mlcdk.emulator.cdk` for how one is found). Modules, one job each:

- :mod:`~mlcdk.emulator.run` the driver: :class:`EmulateOptions`, :func:`emulate` and :func:`main` (exit codes).
- :mod:`~mlcdk.emulator.fixes` the moto fixes: one small function per fix and the table of them (``FIXES``);
  ``moto_fixes()`` applies them, in the server process and around ``mock_aws()`` in tests.
- :mod:`~mlcdk.emulator.readback` what a deployed stack created, one *section* per kind of resource.
- :mod:`~mlcdk.emulator.checks` what a run does with the deployed stacks (``--check CMD``; ``make deploy``'s job).
- :mod:`~mlcdk.emulator.processes`, :mod:`~mlcdk.emulator.server` every child ends with the driver.
- :mod:`~mlcdk.emulator.assembly`, :mod:`~mlcdk.emulator.cdk`, :mod:`~mlcdk.emulator.teardown`.

Extending it, without editing a big function:

- **Read back a new kind of resource** (an ECS service, a security group's rules in more detail): write
  ``readback/<kind>.py`` with a ``describe(view)`` that prints through ``view.line(...)`` and remembers what it
  found with ``view.keep(section, physical_id, label)``, and a ``still_there(clients, ids)`` for the leftover
  check; end it with ``SECTIONS = (Section("<kind>", describe, still_there),)`` and add ``*<kind>.SECTIONS`` to
  the list in ``readback/__init__.py``. From outside the package: ``readback.register(Section(...))``.
- **Do something with the deployed stacks** (run ``mlcdk check``, submit a job): write a check, an object with a
  ``name`` and ``run(deployment)`` (:class:`~mlcdk.emulator.checks.Deployment` holds the endpoint, the
  environment to run commands in, boto3 clients and every stack's read-back view), and pass it in
  ``EmulateOptions(checks=...)``. Fail it with ``raise failed("<step>", "<why>")``.
- **Work around a new moto gap**: a function decorated with ``@fix(name, patches=..., why=..., source=...)`` in
  ``fixes/cloudformation.py`` or ``fixes/batch.py`` (or a new module), added to that module's ``FIXES``, and a
  check in tests/integration/test_moto_fixes.py that fails without it.

This package imports neither moto nor boto3 until a run needs them.
"""
from __future__ import annotations

from typing import Any

__all__ = ["EmulateOptions", "emulate", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlcdk.emulator import run

        return getattr(run, name)
    raise AttributeError(f"module 'mlcdk.emulator' has no attribute {name!r}")
