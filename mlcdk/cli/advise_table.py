"""How `mlcdk advise` shows advice: the table, the lines under it, and the units people read at a glance."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from mlcdk.cli._common import out

#: Which table columns each kind of advice shows (besides the fixed ones).
_RANK_WORDS = {"job cost": "cheapest job first", "cost per million output tokens": "cheapest per million output "
               "tokens first", "hourly cost": "cheapest per hour first"}


def duration(days: float | None) -> str:
    """Days as a person reads them: minutes under an hour, hours under two days, else days."""
    if days is None:
        return "n/a"
    if days < 1 / 24:
        return f"{days * 1440:,.0f} min" if days * 1440 >= 1 else "<1 min"
    if days < 2:
        return f"{days * 24:,.1f} h"
    return f"{days:,.1f} days"


def usd(value: float | None) -> str:
    """Dollars as a person reads them: cents under a dollar, cents shown under a hundred dollars, whole dollars above."""
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 100:,.2f}¢" if value < 0.01 else f"{value * 100:,.1f}¢"
    return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def _row(rank: int, r: Any, columns: dict[str, bool]) -> list[str]:
    cells = [str(rank), r.instance_type, r.accelerator, str(r.nodes)] + ([r.region] if columns["region"] else [])
    cells += [f"${r.hourly_cost_usd:,.2f}"]
    if columns["job"]:
        cells += [duration(r.estimated_days), usd(r.estimated_job_cost_usd)]
    elif columns["tokens"]:
        cells += ["n/a" if r.tokens_per_second is None else f"{r.tokens_per_second:,.0f}",
                  str(r.concurrency or "-"), usd(r.cost_per_million_tokens_usd)]
    else:
        cells += [f"${r.monthly_cost_usd:,.0f}"]
    if columns["baseline"]:
        cells += ([f"{r.speedup_vs_baseline:,.1f}x" if r.speedup_vs_baseline is not None else "n/a"]
                  if columns["job"] else []) + [
            "n/a" if r.cost_vs_baseline is None else f"{r.cost_vs_baseline:,.2f}x"]
    standing = r.reason.split("; ", 1)[-1]  # the fit itself is in the memory column
    return cells + [f"{r.memory_needed_per_device_gib:,.1f}/{r.memory_per_device_gib:,.1f}",
                    "yes" if r.efa else "-", standing]


def print_table(advice: Any, shown: Any, spot: bool, explain: bool, flags: Any) -> None:
    workload = advice.workload
    regions = sorted({r.region for r in advice})
    columns = {"job": workload.trains, "tokens": workload.serves, "baseline": advice.baseline is not None,
               "region": len(workload.regions) != 1}  # one asked region: it is in the title
    where = f" in {regions[0]}" if not columns["region"] and regions else (
        f" across {len(regions)} regions" if len(regions) > 1 else "")
    table = Table(title=f"{workload.describe()}{where}: {len(shown)} of {len(advice)} fitting configurations, "
                        f"{_RANK_WORDS[advice.ranking]}")
    names = ["#", "type", "accelerator", "nodes"] + (["region"] if columns["region"] else []) + ["$/h"]
    names += ["time", "job $"] if columns["job"] else ["tokens/s", "seqs", "$/M tokens"] if columns["tokens"] else [
        "$/month"]
    if columns["baseline"]:
        names += (["speed-up"] if columns["job"] else []) + ["cost ratio"]
    names += ["GiB/device need/cap", "EFA", "reason"]
    for column in names:  # names and figures keep their width; only the reason wraps
        table.add_column(column, justify="left" if column in ("type", "accelerator", "region", "EFA", "reason")
                         else "right", no_wrap=column in ("type", "accelerator", "region"),
                         min_width=16 if column == "reason" else None)
    for number, recommendation in enumerate(shown, 1):
        table.add_row(*_row(number, recommendation, columns))
    out.print(table)
    _print_lines(advice, shown, spot, explain, flags)


def _print_lines(advice: Any, shown: Any, spot: bool, explain: bool, flags: Any) -> None:
    workload = advice.workload
    out.print(f"Memory: {advice.memory.summary()}.", highlight=False)
    out.print(f"Prices: {'spot (lowest dated sample of the region’s own AZs)' if spot else 'on-demand'}, as of "
              f"{advice.prices_as_of}.", highlight=False)
    if workload.trains and workload.max_cost_usd is not None and shown:
        top = shown[0]
        out.print(f"Budget: the top pick's job costs {usd(top.estimated_job_cost_usd)} of the "
                  f"{usd(workload.max_cost_usd)} allowed for the whole job (--max-cost).", highlight=False)
    if advice.baseline is not None:
        base = advice.baseline
        what = "the same job on one node of it" if workload.trains else "its hourly cost in the same region"
        out.print(f"Baseline: {base.instance_type} ({base.accelerator}); speed-up and cost ratio are against {what}"
                  + (f"; n/a: {base.reason}" if base.reason and workload.trains else "") + ".", highlight=False)
    for note in advice.notes:
        out.print(f"Note: {flags(note)}.", highlight=False)
    for warning in dict.fromkeys(w for r in shown for w in r.warnings):
        out.print(f"Warning: {warning}.", highlight=False)
    if explain:
        for number, recommendation in enumerate(shown, 1):
            if recommendation.bound_detail:
                out.print(f"Bound #{number} ({recommendation.nodes} x {recommendation.instance_type}): "
                          f"{recommendation.bound_detail}.", highlight=False)
        print_exclusions(advice.exclusions, flags)


def print_exclusions(exclusions: Any, flags: Any) -> None:
    by_kind: dict[str, list[Any]] = {}
    for exclusion in exclusions:
        by_kind.setdefault(exclusion.kind, []).append(exclusion)
    table = Table(title=f"{len(exclusions)} excluded candidates (instance type x region), by reason")
    for column in ("reason", "count", "types", "example"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for kind, items in by_kind.items():
        types = sorted({e.instance_type for e in items})
        names = ", ".join(types[:4]) + (f" +{len(types) - 4} more" if len(types) > 4 else "")
        example = items[0]
        table.add_row(kind, str(len(items)), names,
                      f"{example.instance_type} in {example.region}: {flags(example.reason)}")
    out.print(table)
