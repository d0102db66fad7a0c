"""A stack diagram as a Mermaid flowchart, which GitHub, GitLab and most documentation sites render.

Each box is a ``subgraph`` titled with its construct's name; each resource a node whose ID is ``r_`` and its logical
ID, labelled with its name, its type (without "AWS::") and its figures, and coloured by layer (``classDef``).
Invisible links (``~~~``) lay each box's resources out in COLUMNS columns and stack sibling boxes, so that a stack
of sixty resources is a block rather than one very wide row. Syntax: https://mermaid.js.org/syntax/flowchart.html
(subgraphs, classDef, entity codes, invisible links, accessibility).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlcdk.diagram.model import LAYERS, Box, Resource, StackDiagram

#: Resources side by side in a box (the rest of a box's resources stack below them).
COLUMNS = 4
#: Fill and stroke per layer (light fills with dark text, readable in light and dark themes).
COLORS = {
    "network": ("#dbeafe", "#1d4ed8"), "engine": ("#ffedd5", "#c2410c"), "storage": ("#dcfce7", "#15803d"),
    "security": ("#fee2e2", "#b91c1c"), "guardrails": ("#fef9c3", "#a16207"), "other": ("#f3f4f6", "#4b5563"),
}


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label: quotes and angle brackets as entity codes, one line."""
    text = " ".join(text.split()) if any(c in text for c in "\r\n") else text
    return text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def node_id(logical_id: str) -> str:
    return f"r_{logical_id}"


def label(resource: Resource) -> str:
    short_type = resource.type.removeprefix("AWS::")
    return "<br/>".join(escape(part) for part in (resource.name, short_type, " · ".join(resource.figures)) if part)


def render(diagram: StackDiagram) -> str:
    """The Mermaid source (without a Markdown fence) of ``diagram``."""
    count = len(diagram.resources)
    lines = ["flowchart TB", f"  accTitle: {escape(diagram.stack)}",
             f"  accDescr: {count} resource{'' if count == 1 else 's'} of {escape(diagram.stack)}, grouped by construct "
             "and coloured by layer; arrows go from the engine's resources to what they use"]
    lines += _box(diagram.root, iter(range(1_000_000)), "  ")[0]
    lines += [f"  {node_id(source)} --> {node_id(target)}" for source, target in diagram.edges]
    lines += [f"  classDef {layer} fill:{COLORS[layer][0]},stroke:{COLORS[layer][1]},color:#111827" for layer in LAYERS]
    return "\n".join(lines) + "\n"


def _box(box: Box, numbers: Iterator[int], indent: str) -> tuple[list[str], str]:
    """The subgraph of ``box`` (and the boxes inside it), and its ID."""
    box_id, inner, resources = f"b{next(numbers)}", indent + "  ", box.resources
    lines = [f'{indent}subgraph {box_id} ["{escape(box.name)}"]']
    lines += [f'{inner}{node_id(r.logical_id)}["{label(r)}"]:::{r.layer}' for r in resources]
    lines += [f"{inner}{node_id(above.logical_id)} ~~~ {node_id(below.logical_id)}"
              for above, below in zip(resources, resources[COLUMNS:])]
    children = []
    for child in box.boxes:
        child_lines, child_id = _box(child, numbers, inner)
        lines += child_lines
        children.append(child_id)
    lines += [f"{inner}{above} ~~~ {below}" for above, below in zip(children, children[1:])]
    return lines + [f"{indent}end"], box_id
