"""Pictures of synthesized stacks, read from the cloud assembly alone: no aws_cdk import, no jsii kernel.

>>> from mlcdk.diagram import read, mermaid
>>> picture = read("cdk.out", "TrainingStack")        # data: boxes of resources, layers, figures, arrows
>>> print(mermaid.render(picture))                    # Mermaid flowchart text

``mlcdk.diagram.dot.render_svg(picture)`` draws it as SVG (the ``svg`` extra). ``mlcdk diagram STACK`` is the
command line.
"""

from __future__ import annotations

from pathlib import Path

from mlcdk.diagram.assembly import StackTemplate, read_stack, stack_names
from mlcdk.diagram.model import LAYERS, Box, Resource, StackDiagram, diagram

__all__ = ["LAYERS", "Box", "Resource", "StackDiagram", "StackTemplate", "diagram", "read", "read_stack",
           "stack_names"]


def read(assembly: str | Path, stack: str) -> StackDiagram:
    """The diagram of ``stack`` in the cloud assembly folder ``assembly`` (raises ConfigurationError)."""
    return diagram(read_stack(Path(assembly), stack))
