"""`mlcdk advise --plot [FILE]`: cost against time for the configurations the table shows, ranked as there.

- Training: each configuration is a point, its job time (x) against its job cost (y): the advisor's trade-off
  between a faster, dearer cluster and a slower, cheaper one. A configuration without a job time (no sourced
  throughput figure for its accelerator) cannot be placed and is listed under the plot instead.
- Inference: serving has no job to finish, so each configuration is a line: its cost growing over a 730-hour
  month, ending at its monthly cost.
- Where a axis spans a factor of LOG_SPAN or more, it is logarithmic.

In the terminal the plot is drawn by plotext (small, pure Python, a dependency); a file (.png, .svg, .pdf) by
matplotlib, the ``plot`` extra. Neither is imported unless a plot is drawn. Only the recommendations' public
fields are read: ``instance_type``, ``nodes``, ``region``, ``estimated_days``, ``estimated_job_cost_usd`` and
``monthly_cost_usd``.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcdk.cli._common import PlainFlagsCommand
from mlcdk.errors import ConfigurationError

#: The value --plot takes when given without a file: draw in the terminal.
TERMINAL = "-"
FILE_SUFFIXES = (".png", ".svg", ".pdf")
PLOT_EXTRA = "pip install 'mlcdk[plot]'"
#: An axis whose largest value is this many times its smallest is drawn logarithmic.
LOG_SPAN = 10.0
HOURS_PER_MONTH = 730  # the advisor's month (Recommendation.monthly_cost_usd)
#: One character per plotted configuration, by rank: the terminal's markers.
MARKERS = "123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Point:
    """One ranked configuration: where it sits on the plot."""

    rank: int  #: its row number in the table, 1 for the top pick
    instance_type: str
    nodes: int
    region: str
    days: float  #: training: the job time; inference: the month (730 hours) its line ends at
    cost_usd: float  #: training: the job cost; inference: the monthly cost
    monthly: bool = False  #: True for inference: the point ends a month of serving

    @property
    def label(self) -> str:
        figures = f"{_usd(self.cost_usd)} a month" if self.monthly else f"{_days(self.days)}, {_usd(self.cost_usd)}"
        return f"#{self.rank} {self.nodes} x {self.instance_type} ({self.region}): {figures}"


@dataclass(frozen=True)
class Chart:
    """What a plot shows: axes, the configurations' points, and the ones it cannot place."""

    title: str
    x_label: str
    y_label: str
    points: tuple[Point, ...]
    lines: bool  #: True: each point ends a line from (0, 0), a cost growing with time (inference)
    left_out: tuple[str, ...] = ()

    def logarithmic(self, axis: str) -> bool:
        values = [p.days if axis == "x" else p.cost_usd for p in self.points]
        return not self.lines and min(values) > 0 and max(values) >= LOG_SPAN * min(values)


def _days(days: float) -> str:
    if days < 1 / 24:
        return f"{days * 1440:,.0f} min"
    return f"{days * 24:,.1f} h" if days < 1 else f"{days:,.1f} days"


def _usd(cost: float) -> str:
    return f"${cost:,.2f}" if cost < 100 else f"${cost:,.0f}"


def chart(advice: Any, shown: Sequence[Any]) -> Chart:
    """The plot of ``shown`` (the advice's recommendations in the table, best first); ConfigurationError when none of
    them can be placed."""
    if not advice.workload.trains:
        points = tuple(Point(rank, r.instance_type, r.nodes, r.region, HOURS_PER_MONTH / 24, r.monthly_cost_usd,
                             monthly=True) for rank, r in enumerate(shown, 1))
        return Chart(f"{advice.workload.describe()}: cost over a month of serving ({HOURS_PER_MONTH} hours)",
                     "days of serving", "cost (USD)", points[:len(MARKERS)], True, _overflow(points))
    points, left_out = [], []
    for rank, r in enumerate(shown, 1):
        if r.estimated_days is None or r.estimated_job_cost_usd is None:
            left_out.append(f"#{rank} {r.nodes} x {r.instance_type}: no job time (no sourced throughput figure)")
        else:
            points.append(Point(rank, r.instance_type, r.nodes, r.region, r.estimated_days, r.estimated_job_cost_usd))
    if not points:
        raise ConfigurationError("--plot: none of the shown configurations has a job time to plot (no sourced "
                                 "throughput figure for their accelerators); --top shows more")
    return Chart(f"{advice.workload.describe()}: job cost against job time", "job time (days)", "job cost (USD)",
                 tuple(points[:len(MARKERS)]), False, (*left_out, *_overflow(points)))


def _overflow(points: Sequence[Point]) -> tuple[str, ...]:
    extra = len(points) - len(MARKERS)
    return (f"{extra} more configurations: the plot shows the first {len(MARKERS)}",) if extra > 0 else ()


def terminal(plot: Chart, width: int = 100, height: int = 24, color: bool = False) -> str:
    """The plot as text for a terminal ``width`` columns wide, with a legend of the markers below it."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    for point, marker in reversed(list(zip(plot.points, MARKERS))):  # the top pick drawn last, so on top
        if plot.lines:
            plt.plot([0, point.days], [0, point.cost_usd], marker=marker)
        else:
            plt.scatter([point.days], [point.cost_usd], marker=marker)
    for axis, scale in (("x", plt.xscale), ("y", plt.yscale)):
        scale("log" if plot.logarithmic(axis) else "linear")
    plt.title(plot.title)
    plt.xlabel(plot.x_label)
    plt.ylabel(plot.y_label)
    canvas = plt.build()
    legend = [f"  {marker}  {point.label}" for point, marker in zip(plot.points, MARKERS)]
    legend += [f"  not plotted: {line}" for line in plot.left_out]
    return (canvas if color else plt.uncolorize(canvas)) + "\n" + "\n".join(legend) + "\n"


def figure(plot: Chart) -> Any:
    """The plot as a matplotlib Figure (no pyplot, so no global state): one marker per configuration, labelled."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigurationError(f"--plot FILE draws with matplotlib, which is not installed: {PLOT_EXTRA}") from None
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    axes = fig.subplots()
    for point in plot.points:  # one series per configuration: its own colour and legend entry
        if plot.lines:
            axes.plot([0, point.days], [0, point.cost_usd], linewidth=1, color=f"C{point.rank - 1}")
        axes.scatter([point.days], [point.cost_usd], zorder=3, color=f"C{point.rank - 1}", label=point.label,
                     gid=f"configuration-{point.rank}")
        axes.annotate(f"#{point.rank}", (point.days, point.cost_usd), xytext=(5, 4), textcoords="offset points",
                      fontsize=8)
    for axis, scale in (("x", axes.set_xscale), ("y", axes.set_yscale)):
        scale("log" if plot.logarithmic(axis) else "linear")
    axes.set(title=plot.title, xlabel=plot.x_label, ylabel=plot.y_label)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    if plot.left_out:
        fig.text(0.01, 0.005, "not plotted: " + "; ".join(plot.left_out), fontsize=7)
    return fig


def save(plot: Chart, path: Path) -> None:
    """Write the plot to ``path``, in the format its suffix names (FILE_SUFFIXES)."""
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ConfigurationError(f"--plot FILE ({str(path)!r}) must end in {', '.join(FILE_SUFFIXES)}; "
                                 "--plot without a file draws in the terminal")
    fig = figure(plot)
    import matplotlib

    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mlcdk"}):  # text stays text
            fig.savefig(path, metadata={"Date": None} if path.suffix.lower() == ".svg" else None)
    except OSError as error:
        raise ConfigurationError(f"--plot FILE ({str(path)!r}) cannot be written: {error.strerror or error}") from None


def draw(advice: Any, shown: Sequence[Any], target: str) -> str:
    """`--plot` for the CLI: write the file now (saying so on stderr) and return "", or return the terminal's text.

    Raises ConfigurationError (the CLI's exit 2) before anything is drawn when the plot cannot be made."""
    plot = chart(advice, shown)
    if target != TERMINAL:
        save(plot, Path(target))
        sys.stderr.write(f"wrote the plot of {len(plot.points)} configurations to {target}\n")
        return ""
    width = max(60, min(160, shutil.get_terminal_size((100, 24)).columns))
    return terminal(plot, width=width, color=sys.stdout.isatty())


class PlotCommand(PlainFlagsCommand):
    """A command whose ``--plot`` takes an optional value: ``--plot`` alone (at the end, or before another option)
    means TERMINAL. click (and so typer) has no optional option values, hence this rewrite before parsing."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rewritten = []
        for index, arg in enumerate(args):
            following = args[index + 1] if index + 1 < len(args) else None
            alone = arg == "--plot" and (following is None or (following.startswith("-") and following != TERMINAL))
            rewritten.append(f"--plot={TERMINAL}" if alone else arg)
        return super().parse_args(ctx, rewritten)
