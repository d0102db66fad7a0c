"""`mlcdk advise --plot [FILE]`: the points plotted are the ranked configurations' time and cost, in the terminal and in
a file; what cannot be plotted is said; the plotting libraries load only for a plot."""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import xml.etree.ElementTree as ElementTree

import pytest
from typer.testing import CliRunner

from mlcdk.advice.advisor import advise
from mlcdk.cli import app
from mlcdk.cli.plot import HOURS_PER_MONTH, MARKERS, chart, figure
from mlcdk.errors import ConfigurationError
from mlcdk.presets.sizing import Workload
from tests.harness import modules_loaded_by

runner = CliRunner()
TRAINING = ["advise", "--task", "training", "--params", "7B", "--region", "us-east-1", "--accelerator", "nvidia"]
INFERENCE = ["advise", "--task", "inference", "--params", "7B", "--region", "us-east-1"]
PLOTTING_MODULES = ("plotext", "matplotlib", "aws_cdk", "jsii", "constructs")


def recommendations(*args: str) -> list[dict]:
    """The configurations `mlcdk advise --json` lists, in rank order: what the plot must show."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["recommendations"]


def canvas_positions(text: str) -> dict[str, tuple[int, int]]:
    """(row, column) of each marker inside the plot's frame (between ┌ and └, right of the y axis)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    left = lines[top].index("┌")
    positions = {}
    for row, line in enumerate(lines[top + 1:bottom]):
        for column, char in enumerate(line[left + 1:-1]):
            if char in MARKERS:
                positions.setdefault(char, (row, column))
    return positions


def test_terminal_plot_places_each_ranked_configuration_by_its_job_time_and_cost():
    expected = recommendations(*TRAINING, "--top", "4")
    result = runner.invoke(app, [*TRAINING, "--top", "4", "--plot"])
    assert result.exit_code == 0, result.output
    table_end = result.output.index("Prices:")
    plot = result.output[table_end:]
    assert "training 7B bf16: job cost against job time" in plot and "job time (days)" in plot
    for rank, r in enumerate(expected, 1):
        legend = (f"  {MARKERS[rank - 1]}  #{rank} {r['nodes']} x {r['instance_type']} ({r['region']}): "
                  f"{r['estimated_days']:,.1f} days, ${r['estimated_job_cost_usd']:,.0f}")
        assert legend in plot.splitlines()
    positions = canvas_positions(plot)
    visible = [(rank, r) for rank, r in enumerate(expected, 1) if MARKERS[rank - 1] in positions]
    assert visible[0][0] == 1  # the top pick is drawn last, so never hidden
    for (rank_a, a), (rank_b, b) in zip(visible, visible[1:]):
        (row_a, column_a), (row_b, column_b) = positions[MARKERS[rank_a - 1]], positions[MARKERS[rank_b - 1]]
        # longer jobs further right, dearer ones higher up (a smaller row)
        assert (column_a < column_b) == (a["estimated_days"] < b["estimated_days"]) or a["estimated_days"] == b["estimated_days"]
        assert (row_a > row_b) == (a["estimated_job_cost_usd"] < b["estimated_job_cost_usd"]) or \
            a["estimated_job_cost_usd"] == b["estimated_job_cost_usd"]
    # the cheapest job sits on the bottom row, the longest in the last column
    cheapest = min(range(len(expected)), key=lambda i: expected[i]["estimated_job_cost_usd"])
    longest = max(range(len(expected)), key=lambda i: expected[i]["estimated_days"])
    rows = max(row for row, _ in positions.values())
    assert positions[MARKERS[cheapest]][0] == rows and positions[MARKERS[longest]][1] == max(
        column for _, column in positions.values())


def test_file_plot_holds_one_labelled_marker_per_ranked_configuration(tmp_path):
    target = tmp_path / "plot.svg"
    result = runner.invoke(app, [*TRAINING, "--top", "5", "--json", "--plot", str(target)])
    assert result.exit_code == 0, result.output
    expected = json.loads(result.stdout)["recommendations"]  # --json is unchanged by a file plot
    svg = ElementTree.fromstring(target.read_text())
    groups = {g.get("id"): g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("id")}
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    for rank, r in enumerate(expected, 1):
        assert f"configuration-{rank}" in groups  # its marker
        assert (f"#{rank} {r['nodes']} x {r['instance_type']} ({r['region']}): {r['estimated_days']:,.1f} days, "
                f"${r['estimated_job_cost_usd']:,.0f}") in texts
    assert f"configuration-{len(expected) + 1}" not in groups
    assert "wrote the plot of 5 configurations to" in result.stderr


def test_figure_points_are_the_recommendations_time_and_cost():
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia"))
    shown = advice[:6]
    fig = figure(chart(advice, shown))
    axes = fig.axes[0]
    plotted = [tuple(c.get_offsets()[0]) for c in axes.collections]
    assert plotted == [(r.estimated_days, r.estimated_job_cost_usd) for r in shown]
    assert [t.get_text() for t in axes.texts] == [f"#{rank}" for rank in range(1, 7)]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("job time (days)", "job cost (USD)")


def test_log_axis_only_where_values_span_ten_times():
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia"))
    shown = advice[:6]
    days = [r.estimated_days for r in shown]
    costs = [r.estimated_job_cost_usd for r in shown]
    plot = chart(advice, shown)
    assert plot.logarithmic("x") is (max(days) >= 10 * min(days))
    assert plot.logarithmic("y") is (max(costs) >= 10 * min(costs))
    assert figure(plot).axes[0].get_xscale() == ("log" if max(days) >= 10 * min(days) else "linear")


def test_inference_plots_a_months_cost_line_per_configuration():
    expected = recommendations(*INFERENCE, "--top", "3")
    advice = advise(Workload(task="inference", params="7B", regions="us-east-1"))
    plot = chart(advice, advice[:3])
    assert plot.lines and plot.x_label == "days of serving"
    fig = figure(plot)
    lines = [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in fig.axes[0].lines]
    assert lines == [((0, 730 / 24), (0, r["monthly_cost_usd"])) for r in expected]
    result = runner.invoke(app, [*INFERENCE, "--top", "3", "--plot"])
    assert result.exit_code == 0, result.output
    assert f"  1  #1 1 x {expected[0]['instance_type']} (us-east-1): ${expected[0]['monthly_cost_usd']:,.0f} a month" \
        in result.output.splitlines()
    assert HOURS_PER_MONTH == 730  # the advisor's month: monthly_cost_usd is 730 hours


def test_configurations_without_a_job_time_are_listed_not_plotted():
    advice = advise(Workload(task="training", params="7B", regions="us-east-1", accelerator="nvidia"))
    shown = list(advice[:3])
    shown[1] = dataclasses.replace(shown[1], estimated_days=None, estimated_job_cost_usd=None)
    plot = chart(advice, shown)
    assert [p.rank for p in plot.points] == [1, 3]
    assert plot.left_out == (f"#2 {shown[1].nodes} x {shown[1].instance_type}: no job time (no sourced throughput "
                             "figure)",)
    none = [dataclasses.replace(r, estimated_days=None, estimated_job_cost_usd=None) for r in shown]
    with pytest.raises(ConfigurationError, match="none of the shown configurations has a job time"):
        chart(advice, none)


@pytest.mark.parametrize("args, message", [
    (["--plot", "out.jpg"], r"--plot FILE \('out.jpg'\) must end in .png, .svg, .pdf"),
    (["--plot", "/nonexistent/dir/out.png"], r"--plot FILE \('/nonexistent/dir/out.png'\) cannot be written"),
    (["--plot", "--json"], "cannot be combined with --emit-context, nor without a FILE with --json"),
    (["--json", "--plot"], "nor without a FILE with --json"),
    (["--emit-context", "--plot", "x.png"], "cannot be combined with --emit-context"),
])
def test_plot_usage_errors_are_one_line_and_exit_2(args, message, tmp_path):
    result = runner.invoke(app, [*TRAINING, *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--plot", "--top", "2"], ["--top", "2", "--plot"], ["--plot=-", "--top", "2"]])
def test_plot_alone_draws_in_the_terminal_wherever_it_stands(args):
    result = runner.invoke(app, [*TRAINING, *args])
    assert result.exit_code == 0, result.output
    assert "job cost against job time" in result.output and "  2  #2 " in result.output


def test_advise_without_plot_loads_no_plotting_library_and_a_terminal_plot_no_matplotlib():
    run = ("from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
           "assert CliRunner().invoke(app, {args!r}).exit_code == 0\n")
    assert modules_loaded_by(run.format(args=[*TRAINING, "--explain"]), PLOTTING_MODULES) == []
    assert modules_loaded_by(run.format(args=[*INFERENCE, "--json"]), PLOTTING_MODULES) == []
    assert modules_loaded_by(run.format(args=[*TRAINING, "--plot"]), PLOTTING_MODULES) == ["plotext"]


def test_a_file_plot_without_the_plot_extra_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    result = runner.invoke(app, [*TRAINING, "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert "--plot FILE draws with matplotlib, which is not installed: pip install 'mlcdk[plot]'" in result.output
    assert not list(tmp_path.iterdir())
