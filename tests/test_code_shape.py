"""The shape of mlcdk's code (issue #26): no function over 60 lines, none with more than 6 parameters.

Lines are counted from the ``def`` to the function's last line (decorators not counted). Parameters exclude
``self``/``cls`` and ``*args``/``**kwargs``. A longer signature passes one frozen dataclass instead (a plan, a
props object). The exceptions to the parameter count are the public API, whose signatures must not change, and
typer's idiom; none is excused for its length (a typer command takes its options from a module-level table, a
construct's constructor hands its steps to named methods).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlcdk"
MAX_LINES = 60
MAX_PARAMETERS = 6
TYPER = "typer command: one parameter per CLI option is typer's idiom"
CONSTRUCT = "public construct: keyword-only arguments are the CDK idiom (STYLE.md 1), and the signature is the API"
STACK = "public stack: its settings, then cdk.Stack's own keywords (env, description...) passed through"

#: Qualified name -> why it may take more than MAX_PARAMETERS parameters.
PARAMETER_EXCEPTIONS = {
    "mlcdk.constructs.training_cluster.TrainingCluster.__init__": CONSTRUCT,
    "mlcdk.constructs.inference_fleet.InferenceFleet.__init__": CONSTRUCT,
    "mlcdk.stacks.TrainingStack.__init__": STACK,
    "mlcdk.stacks.InferenceStack.__init__": STACK,
    "mlcdk.aws.preflight.preflight":
        "public library function (README, 'Preflight'): one keyword per `mlcdk preflight` option, as the command has",
    "mlcdk.constructs.guardrails.Guardrails.add_alarm":
        "public method (extra_alarms hooks call it): cloudwatch.Alarm's own threshold, comparison, periods, "
        "description and missing-data keywords",
    "mlcdk.cli.advise.advise_command": TYPER,
    "mlcdk.cli.jobs.submit": TYPER,
    "mlcdk.cli.check.check": TYPER,
    "mlcdk.cli.emulate.emulate_command": TYPER,
    "mlcdk.cli.preflight.preflight_command": TYPER,
}


def functions(root: Path = PACKAGE):
    """(qualified name, lines, parameters) of every function and method under ``root``."""
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        yield from _walk(ast.parse(path.read_text(encoding="utf-8")), module)


def _walk(node: ast.AST, prefix: str):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}.{child.name}"
            arguments = child.args
            named = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
            yield name, child.end_lineno - child.lineno + 1, len([a for a in named if a not in ("self", "cls")])
            yield from _walk(child, name)
        elif isinstance(child, ast.ClassDef):
            yield from _walk(child, f"{prefix}.{child.name}")
        else:
            yield from _walk(child, prefix)


def violations(found) -> list[str]:
    problems = []
    for name, lines, parameters in found:
        if lines > MAX_LINES:
            problems.append(f"{name}: {lines} lines (at most {MAX_LINES})")
        if parameters > MAX_PARAMETERS and name not in PARAMETER_EXCEPTIONS:
            problems.append(f"{name}: {parameters} parameters (at most {MAX_PARAMETERS}; pass a frozen dataclass)")
    return problems


def test_no_function_is_long_or_takes_many_parameters() -> None:
    assert violations(functions()) == []


def test_every_exception_names_a_function_that_still_needs_it() -> None:
    found = {name: parameters for name, _, parameters in functions()}
    stale = [name for name in PARAMETER_EXCEPTIONS if name not in found or found[name] <= MAX_PARAMETERS]
    assert stale == []


SIXTY = "    x = 1\n" * 60


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(a, b, c, d, e, f, g):\n    pass\n", ["m.f: 7 parameters (at most 6; pass a frozen dataclass)"]),
    ("class C:\n    def f(self, a, b, c, d, e, *args, f, **kwargs):\n        pass\n", []),
    ("def f():\n" + SIXTY, ["m.f: 61 lines (at most 60)"]),
    ("def f():\n" + "    x = 1\n" * 59, []),
    ("def outer():\n    def inner(a, b, c, d, e, f, g):\n        pass\n",
     ["m.outer.inner: 7 parameters (at most 6; pass a frozen dataclass)"]),
    ("def f(\n" + "    a=1,\n" * 5 + "):\n    '''doc'''\n" + SIXTY, ["m.f: 68 lines (at most 60)"]),
    ("def f():\n    '''doc'''\n" + SIXTY + "    x = 2\n",
     ["m.f: 63 lines (at most 60)"]),
])
def test_the_walk_counts_lines_and_parameters_as_documented(source: str, expected: list[str]) -> None:
    assert violations(_walk(ast.parse(source), "m")) == expected
