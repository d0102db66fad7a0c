"""The layers of docs/design.md hold: no import cycle between mlcdk's modules, and no import that points up a layer.

The layers are declared once, in the table under "## Layers" in docs/design.md, and parsed here: a row gives a
rank, a layer's name and the packages or modules in it. A module may import modules of its own layer and of every
layer of a lower rank; two layers of the same rank sit beside each other and may not import each other.

The graph is every ``import`` and ``from ... import`` in mlcdk/, read with ``ast``: those inside functions and
under ``if TYPE_CHECKING:`` count too, so an import cannot be moved into a function (or behind TYPE_CHECKING) to
hide a cycle. The checks are plain functions of a graph, and the tests at the bottom feed them a small planted
graph and a planted package, so that a check that stopped finding anything would fail here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlcdk"
DESIGN = ROOT / "docs" / "design.md"

Graph = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Layer:
    rank: int
    name: str
    members: tuple[str, ...]  #: packages (every module under them) or modules; the root package means itself only


# --------------------------------------------------------------------------------------------
# Reading the code and the design document
# --------------------------------------------------------------------------------------------


def module_names(root: Path) -> dict[str, Path]:
    """Every module under the package directory ``root``, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imported(module: str, path: Path, node: ast.AST, known: Iterable[str]) -> list[str]:
    """The modules one import statement names: ``from p import m`` is the module p.m where m is one, else p."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]


def import_graph(root: Path) -> dict[str, frozenset[str]]:
    """module -> the modules of the same package that it imports, anywhere in its source (functions, TYPE_CHECKING
    blocks and all). An import of a package that is not a module of it (``import mlcdk``) maps to the package."""
    modules = module_names(root)
    top = root.name
    graph = {}
    for module, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(module, path, node, modules):
                while name not in modules and "." in name:  # import mlcdk.x.y.Name-like spellings
                    name = name.rsplit(".", 1)[0]
                if (name == top or name.startswith(top + ".")) and name != module:
                    found.add(name)
        graph[module] = frozenset(found)
    return graph


def declared_layers(text: str) -> list[Layer]:
    """The rows of the layer table under "## Layers": ``| rank | layer | `pkg`, `pkg` | ... |``."""
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            layers.append(Layer(int(cells[0]), cells[1].strip("*"), tuple(re.findall(r"`([\w.]+)`", cells[2]))))
    return layers


# --------------------------------------------------------------------------------------------
# The checks: plain functions of a graph
# --------------------------------------------------------------------------------------------


def layer_of(module: str, layers: Iterable[Layer]) -> Layer | None:
    """The layer whose longest member holds ``module`` (the root package, a member without a dot, holds only
    itself)."""
    best: tuple[int, Layer] | None = None
    for layer in layers:
        for member in layer.members:
            holds = module == member or ("." in member and module.startswith(member + "."))
            if holds and (best is None or len(member) > best[0]):
                best = (len(member), layer)
    return None if best is None else best[1]


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's algorithm, iteratively), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def layer_problems(graph: Graph, layers: list[Layer]) -> list[str]:
    """Modules in no layer, and every import that points up a layer or across to a layer beside its own."""
    problems = [f"{module} is in no layer of docs/design.md" for module in sorted(graph)
                if layer_of(module, layers) is None]
    for module in sorted(graph):
        source = layer_of(module, layers)
        for target in sorted(graph[module]):
            goal = layer_of(target, layers)
            if source is None or goal is None or goal is source or goal.rank < source.rank:
                continue
            direction = "up" if goal.rank > source.rank else "across"
            problems.append(f"{module} ({source.name}, rank {source.rank}) imports {target} "
                            f"({goal.name}, rank {goal.rank}): {direction} a layer")
    return problems


# --------------------------------------------------------------------------------------------
# mlcdk itself
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph():
    return import_graph(PACKAGE)


@pytest.fixture(scope="module")
def layers():
    return declared_layers(DESIGN.read_text())


def test_the_design_document_declares_the_layers(layers):
    assert [(layer.rank, layer.name) for layer in layers] == [
        (0, "base"), (1, "facts"), (2, "checks"), (3, "advice"), (3, "fetching"), (4, "constructs"),
        (4, "aws calls"), (4, "emulator"), (4, "diagram"), (5, "app"), (6, "entry points")]
    members = [member for layer in layers for member in layer.members]
    assert len(members) == len(set(members)), "a package is declared in two layers"


def test_no_import_cycle_between_mlcdk_modules(graph):
    assert cycles(graph) == []


def test_no_import_points_up_or_across_a_layer(graph, layers):
    assert layer_problems(graph, layers) == []


def test_the_named_layers_hold_what_the_issue_names(layers):
    """The folders say the architecture: facts, advice, fetching and AWS calls each in their own package."""
    assert layer_of("mlcdk.presets.catalog", layers).name == "facts"
    assert layer_of("mlcdk.presets.datafile", layers).name == "facts"
    assert layer_of("mlcdk.advice.advisor", layers).name == "advice"
    assert layer_of("mlcdk.advice.suggestions", layers).name == "advice"
    assert layer_of("mlcdk.fetch.refresh", layers).name == "fetching"
    assert layer_of("mlcdk.aws.preflight", layers).name == "aws calls"
    assert layer_of("mlcdk.aws.jobs.submit", layers).name == "aws calls"
    assert layer_of("mlcdk.constructs.training_cluster", layers).name == "constructs"
    assert layer_of("mlcdk.settings", layers).name == "app"
    assert layer_of("mlcdk", layers).name == "entry points"


def test_the_constructs_never_read_the_apps_settings(graph):
    readers = sorted(m for m, targets in graph.items() if m.startswith("mlcdk.constructs") and "mlcdk.settings" in targets)
    assert readers == []


def outside_imports(root: Path) -> dict[str, frozenset[str]]:
    """module -> the top-level names of the packages outside ``root`` that it imports, anywhere in its source."""
    found = {}
    for module, path in module_names(root).items():
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
        found[module] = frozenset(names - {root.name})
    return found


def test_below_the_constructs_nothing_imports_aws_cdk_and_facts_and_advice_call_no_aws(layers):
    """The base, facts, advice and fetching layers never import aws_cdk, jsii or the constructs library (so
    ``mlcdk advise`` and ``mlcdk catalog`` start without the jsii kernel); the facts and the advice never import
    boto3 either: calling AWS is for the fetching and aws-calls layers. (mlcdk.params, the checks layer, reads
    aws_cdk's Token only once the constructs have loaded aws_cdk: it checks CDK-typed parameters.)"""
    cdk, aws = {"aws_cdk", "jsii", "constructs"}, {"boto3", "botocore"}
    problems = []
    for module, names in sorted(outside_imports(PACKAGE).items()):
        layer = layer_of(module, layers)
        if layer is not None and layer.name in ("base", "facts", "advice", "fetching") and names & cdk:
            problems.append(f"{module} ({layer.name}) imports {sorted(names & cdk)}")
        if layer is not None and layer.name in ("base", "facts", "checks", "advice") and names & aws:
            problems.append(f"{module} ({layer.name}) imports {sorted(names & aws)}")
    assert problems == []


def test_the_facts_read_data_files_through_the_one_loader():
    """No module of the facts, the advice, the constructs, the app or the CLI parses JSON itself (``json.loads``/
    ``json.load``) except the loader, mlcdk/presets/datafile.py (and the node's own scripts in
    mlcdk/constructs/assets/, which read neuron-monitor's output on the instance); no module anywhere imports a
    private name of another mlcdk module."""
    places = [*(PACKAGE / name for name in ("presets", "advice", "constructs", "cli")), PACKAGE / "settings.py",
              PACKAGE / "stacks.py"]
    files = [p for place in places for p in ([place] if place.is_file() else place.rglob("*.py"))]
    raw = sorted(str(p.relative_to(ROOT)) for p in files if re.search(r"\bjson\.loads?\(", p.read_text())
                 and p != PACKAGE / "presets" / "datafile.py" and "assets" not in p.parts)
    assert raw == []
    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlcdk"):
                private += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


# --------------------------------------------------------------------------------------------
# The checks catch what they must: planted graphs and a planted package
# --------------------------------------------------------------------------------------------

PLANTED_LAYERS = [Layer(0, "low", ("pkg.low",)), Layer(1, "mid", ("pkg.mid",)), Layer(1, "side", ("pkg.side",)),
                  Layer(2, "top", ("pkg.top", "pkg"))]


def test_a_planted_cycle_is_found():
    graph = {"pkg.low.a": frozenset({"pkg.low.b"}), "pkg.low.b": frozenset({"pkg.low.c"}),
             "pkg.low.c": frozenset({"pkg.low.a"}), "pkg.low.d": frozenset({"pkg.low.a"})}
    assert cycles(graph) == [["pkg.low.a", "pkg.low.b", "pkg.low.c"]]
    assert cycles({"pkg.low.a": frozenset({"pkg.low.b"}), "pkg.low.b": frozenset()}) == []


def test_a_planted_upward_and_sideways_import_is_found():
    graph = {"pkg.low.a": frozenset({"pkg.mid.b"}), "pkg.mid.b": frozenset({"pkg.low.a", "pkg.side.c"}),
             "pkg.side.c": frozenset(), "pkg.top.d": frozenset({"pkg.mid.b", "pkg"}), "pkg": frozenset(),
             "pkg.other": frozenset()}
    assert layer_problems(graph, PLANTED_LAYERS) == [
        "pkg.other is in no layer of docs/design.md",
        "pkg.low.a (low, rank 0) imports pkg.mid.b (mid, rank 1): up a layer",
        "pkg.mid.b (mid, rank 1) imports pkg.side.c (side, rank 1): across a layer",
    ]


def test_imports_inside_functions_and_under_type_checking_are_in_the_graph(tmp_path):
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from pkg.low import b\n    return b\n")
    (package / "low" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.low.a import f\n")
    (package / "low" / "c.py").write_text("from . import a\nimport pkg.low.b\nfrom .b import TYPE_CHECKING\n")
    graph = import_graph(package)
    assert graph["pkg.low.a"] == {"pkg.low.b"} and graph["pkg.low.b"] == {"pkg.low.a"}
    assert graph["pkg.low.c"] == {"pkg.low.a", "pkg.low.b"}
    assert cycles(graph) == [["pkg.low.a", "pkg.low.b"]]


def test_the_layer_table_is_parsed_from_markdown():
    text = ("# t\n\n## Layers\n\n| rank | layer | packages | may import |\n|---|---|---|---|\n"
            "| 0 | **base** | `pkg.low`, `pkg.x` | nothing |\n| 1 | top | `pkg` (the package itself) | base |\n\n## Next\n"
            "| 9 | not a layer | `pkg.y` | |\n")
    assert declared_layers(text) == [Layer(0, "base", ("pkg.low", "pkg.x")), Layer(1, "top", ("pkg",))]
