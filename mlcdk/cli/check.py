"""`mlcdk check`: run an all-reduce bandwidth test on every node of a deployed cluster, and judge it.

The work is in mlcdk.aws.check; the cluster is found as the job commands find it (--cluster, mlcdk.aws.jobs.clusters),
and this module formats the report.
Exit codes: 0 the check passed; 1 it failed (the cause is named); 2 a usage error.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from mlcdk.cli._common import PlainFlagsCommand, err, fail, out, print_json
from mlcdk.cli.jobs import CLUSTER, JSON, REGION, STACK, connect, handled, target

app = typer.Typer()

BACKEND_NAMES = {"nccl": "NCCL", "xla": "Neuron collectives (xla)", "gloo": "gloo"}


def _gbytes(value: float | None) -> str:
    """GB/s with two decimals, three below 1 GB/s (a CPU cluster's figures)."""
    return "-" if value is None else f"{value:,.2f}" if value >= 1 else f"{value:.3f}"


def _row(result, expected) -> list[str]:
    share = "-" if not expected.network_gbytes else f"{result.busbw_gbytes / expected.network_gbytes:.0%}"
    low = expected.minimum_gbytes is not None and result.busbw_gbytes < expected.minimum_gbytes
    return [str(result.node), _gbytes(result.busbw_gbytes), _gbytes(result.algbw_gbytes),
            _gbytes(expected.network_gbytes), share, _gbytes(expected.minimum_gbytes), "LOW" if low else "ok"]


def show(report) -> None:
    """The report as a table and a verdict line."""
    facts, expected = report.facts, report.expected
    backend = BACKEND_NAMES.get(report.results[0].backend, report.results[0].backend) if report.results else "-"
    path = "EFA" if facts.efa else "TCP"
    table = Table(title=f"job {report.job_id}: {report.nodes} x {facts.instance_type}, {backend} over {path} "
                        f"({report.status})")
    for column in ("node", "bus GB/s", "alg GB/s", "network GB/s", "share", "minimum GB/s", "result"):
        table.add_column(column, justify="left" if column in ("node", "result") else "right")
    for result in report.results:
        table.add_row(*_row(result, expected))
    reported = {r.node for r in report.results}
    for node in range(report.nodes):
        if node not in reported:
            table.add_row(str(node), "-", "-", "-", "-", "-", "no result")
    out.print(table, highlight=False)
    out.print(f"threshold: {expected.why}", highlight=False)
    for failure in report.failures:
        out.print(f"node {failure.node} failed at {failure.stage}: {failure.error}", highlight=False)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False)
    if report.passed:
        out.print("PASSED: every node ran the all-reduce" + (
            f" at {expected.minimum_gbytes:g} GB/s or more" if expected.minimum_gbytes is not None else ""),
            highlight=False)
    elif report.cause is not None:
        out.print(f"FAILED ({report.cause.name}): {report.cause.summary}. What to do: {report.cause.advice}",
                  highlight=False)
    else:
        reason = f" ({report.status_reason})" if report.status_reason else ""
        out.print(f"FAILED: the job ended {report.status}{reason}; read the nodes' logs: mlcdk logs {report.job_id} "
                  "--node N", highlight=False)


@app.command("check", cls=PlainFlagsCommand)
def check(
    cluster: Optional[str] = CLUSTER,
    stack: Optional[str] = STACK,
    region: Optional[str] = REGION,
    nodes: Optional[int] = typer.Option(None, help="Nodes to test, 2 or more for the network. Default: the "
                                                   "cluster's limit."),
    size_mib: Optional[int] = typer.Option(None, help="MiB per all-reduce. Default: 256 with accelerators, 32 on CPU."),
    iterations: int = typer.Option(20, help="Timed all-reduces, after 5 untimed ones."),
    timeout_minutes: float = typer.Option(60, help="Cancel the job after this long, waiting for capacity included."),
    as_json: bool = JSON,
) -> None:
    """Run an all-reduce bandwidth test on every node and compare it with the nodes' network figure."""
    from mlcdk.aws import check as acceptance

    if nodes is not None and nodes < 1:  # the upper bound is the cluster's, read after connecting
        fail(f"--nodes {nodes} must be at least 1")
    if size_mib is not None and not 1 <= size_mib <= 16384:
        fail(f"--size-mib {size_mib} is out of range: 1 to 16384")
    if not 1 <= iterations <= 1000:
        fail(f"--iterations {iterations} is out of range: 1 to 1000")
    if not 1 <= timeout_minutes <= 24 * 60:
        fail(f"--timeout-minutes {timeout_minutes:g} is out of range: 1 to 1440")
    options = acceptance.Options(nodes=nodes, size_bytes=None if size_mib is None else size_mib * 2**20,
                                 iterations=iterations, timeout_minutes=timeout_minutes)
    name, region = target(cluster, stack, region)
    with handled():
        connection = connect(name, region)
        err.print(f"submitting the check to cluster {connection.cluster.name} ({connection.cluster.region}); "
                  f"waiting up to {timeout_minutes:g} minutes...", highlight=False, markup=False)
        report = acceptance.run(connection, options)
    if as_json:
        print_json(report)
    else:
        show(report)
    raise typer.Exit(0 if report.passed else 1)
