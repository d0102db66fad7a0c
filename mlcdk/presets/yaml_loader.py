"""PyYAML's safe loader with the limits of mlcdk.presets.datafile: string keys that never repeat, bounded depth,
aliases and expanded size, finite numbers and bounded integers. Used only through ``datafile.read_document``.

The checks run on the composed node graph, before any Python object is built: a "billion laughs" document
(ten aliases of ten aliases of ...) is refused from its few hundred nodes, not after expanding them.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from mlcdk.errors import shown
from mlcdk.presets.file_limits import MAX_INTEGER_DIGITS, Limits

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_KIND = {"tag:yaml.org,2002:int": "an integer", "tag:yaml.org,2002:null": "null", "tag:yaml.org,2002:bool": "a boolean",
         "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:timestamp": "a date"}


class Refused(ValueError):
    """A YAML document that breaks one of the limits (the message names the line)."""


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits, self.depth, self.aliases = limits, 0, 0

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                mark = self.peek_event().start_mark
                raise Refused(f"has more than {self.limits.max_aliases} aliases (line {mark.line + 1})")
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                mark = self.peek_event().start_mark
                raise Refused(f"is nested more than {self.limits.max_depth} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201
        seen: set = set()
        for key, _ in node.value:
            if key.tag == _MERGE:
                continue
            if key.tag != _STR:
                kind = _KIND.get(key.tag, key.tag)
                raise Refused(f"the key {shown(key.value)} at {_line(key)} is read as {kind}, not a name; quote it "
                              f"('{key.value}': ...)")
            if key.value in seen:
                raise Refused(f"the key {shown(key.value)} appears twice in one mapping ({_line(key)}; the last would "
                              "silently win)")
            seen.add(key.value)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):  # noqa: ANN001, ANN201
        text = str(node.value).replace("_", "").lstrip("+-")
        if len(text) > MAX_INTEGER_DIGITS:
            raise Refused(f"the integer {shown(node.value)} at {_line(node)} has more than {MAX_INTEGER_DIGITS} digits")
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):  # noqa: ANN001, ANN201
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise Refused(f"the number {shown(node.value)} at {_line(node)} is not finite")
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


def _expanded_size(root: yaml.Node, limit: int) -> None:
    """Refuse a node graph that expands to more than ``limit`` values, or that contains itself (an alias of an
    anchor inside that anchor). Sizes are memoized per node, so the walk is linear in the nodes written."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = [] if isinstance(node, yaml.ScalarNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else list(node.value))
        if not children_done:
            if key in active:
                raise Refused(f"the value at {_line(node)} contains an alias of itself")
            active.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        active.discard(key)
        sizes[key] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[key] > limit:
            raise Refused(f"expands to more than {limit:,} values through its aliases ({_line(node)})")


#: Where a quoted scalar may begin: after these characters (or at the start of a line), not inside a plain word.
_TOKEN_START = frozenset(" \t\n:[{,-?")


def _flow_depth(text: str, limit: int) -> None:
    """Refuse flow collections (``[`` and ``{``) nested deeper than ``limit``, in one pass before PyYAML sees the
    text: PyYAML's scanner looks ahead over unclosed flow brackets, and a run of a thousand of them costs it
    seconds. Quoted scalars and comments are skipped; a bracket inside a plain scalar counts, which only matters
    for a plain scalar holding more than ``limit`` unclosed brackets."""
    depth, quote, comment, escaped, previous = 0, "", False, False, "\n"
    for index, char in enumerate(text):
        if comment:
            comment = char != "\n"
        elif quote:
            if char == quote and not escaped:
                quote = ""
            escaped = quote == '"' and char == "\\" and not escaped
        elif char in "'\"" and previous in _TOKEN_START:
            quote = char
        elif char == "#" and previous in " \t\n":
            comment = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, index) + 1
                raise Refused(f"is nested more than {limit} levels deep (line {line})")
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char


def load(text: str, limits: Limits) -> Any:
    """The one document in ``text``, within ``limits`` (Refused or a yaml.YAMLError otherwise)."""
    _flow_depth(text, limits.max_depth)
    loader = _Loader(text, limits)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, limits.max_values)
        return loader.construct_document(node)
    finally:
        loader.dispose()
