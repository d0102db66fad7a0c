"""The ``mlcdk`` command line: a thin layer that formats the library's answers as tables or JSON.

Exit codes: 0 success; 2 a usage or configuration error (one clear line, no traceback); 1 anything
unexpected. This module never imports aws_cdk, so ``catalog`` and ``presets`` start fast.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from mlcdk.errors import ConfigurationError

app = typer.Typer(help="ML-aware AWS infrastructure: instance catalog, presets and CDK constructs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
catalog_app = typer.Typer(help="Facts on accelerated EC2 instance types.", no_args_is_help=True)
presets_app = typer.Typer(help="Named workload presets.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(presets_app, name="presets")

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)

REPO_PRICES_CSV = Path("data/prices/aws-ml-instance-prices.csv")


def fail(message: str) -> None:
    """Print one clear line and exit 2 (a configuration or usage error)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(2)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _plain(value: Any) -> Any:
    """Frozen dataclasses and read-only mappings as plain JSON values (dataclasses.asdict cannot copy those)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(_plain(document), indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
# catalog
# --------------------------------------------------------------------------------------------


def _spec_row(spec: Any, region: str | None) -> dict[str, Any]:
    acc = spec.accelerator
    return {
        "instance_type": spec.instance_type,
        "accelerator": None if acc is None else f"{acc.count}x {acc.name}",
        "accelerator_memory_gib": None if acc is None else round(acc.total_memory_gib, 1),
        "vcpus": spec.vcpus,
        "memory_gib": round(spec.memory_gib, 1),
        "efa_interfaces": spec.maximum_efa_interfaces if spec.efa_supported else 0,
        "regions": len(spec.offerings),
        "region": region,
        "on_demand_usd_per_hour": spec.on_demand_price(region) if region else None,
        "spot_usd_per_hour": spec.spot_price(region) if region else None,
    }


@catalog_app.command("list")
def catalog_list(
    family: Optional[str] = typer.Option(None, help="Only this family, e.g. trn1, p5, g6e."),
    accelerator: Optional[str] = typer.Option(
        None, help="trainium, inferentia, nvidia, amd, gpu, neuron, none (CPU-only), or a name prefix such as h100."),
    region: Optional[str] = typer.Option(None, help="Only types offered in this region; shows its prices."),
    min_accelerator_memory_gib: Optional[float] = typer.Option(None, help="Minimum total accelerator memory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List catalog instance types, with prices in --region."""
    from mlcdk.presets import catalog

    try:
        specs = catalog.filter(family=family, accelerator=accelerator, region=region,
                               min_accelerator_memory_gib=min_accelerator_memory_gib)
    except ConfigurationError as exc:
        fail(str(exc))
    rows = [_spec_row(spec, region) for spec in specs]
    provenance = catalog.default_catalog().provenance
    if as_json:
        _print_json({"prices_as_of": provenance.prices_as_of, "instance_types": rows})
        return
    table = Table(title=f"{len(rows)} instance types" + (f" in {region}" if region else ""))
    for column in ("type", "accelerator", "acc. mem GiB", "vCPUs", "mem GiB", "EFA", "regions"):
        table.add_column(column, justify="left" if column in ("type", "accelerator") else "right")
    if region:
        table.add_column("on-demand $/h", justify="right")
        table.add_column("spot $/h (min)", justify="right")
    for row in rows:
        cells = [row["instance_type"], row["accelerator"] or "-", _gib(row["accelerator_memory_gib"]),
                 str(row["vcpus"]), _gib(row["memory_gib"]), str(row["efa_interfaces"] or "-"), str(row["regions"])]
        if region:
            cells += [_usd(row["on_demand_usd_per_hour"]), _usd(row["spot_usd_per_hour"])]
        table.add_row(*cells)
    out.print(table)
    if region:
        out.print(f"Prices as of {provenance.prices_as_of} ({provenance.prices_source}). Spot prices are a dated sample.")


@catalog_app.command("show")
def catalog_show(
    instance_type: str = typer.Argument(..., help="e.g. trn1.32xlarge"),
    region: Optional[str] = typer.Option(None, help="Show offerings and prices for this region only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Every fact about one instance type, with its source and date."""
    from mlcdk.presets import catalog

    try:
        spec = catalog.get(instance_type)
        if region is not None:
            catalog.default_catalog().check_region(region)
    except ConfigurationError as exc:
        fail(str(exc))
    provenance = catalog.default_catalog().provenance
    regions = [region] if region else list(spec.regions)
    if as_json:
        document = _plain(spec)
        document["offerings"] = {r: list(spec.offered_azs(r)) for r in regions}
        document["prices"] = {r: {"on_demand": spec.on_demand_price(r), "spot": dict(spec.spot_prices(r))}
                              for r in regions}
        document["provenance"] = _plain(provenance)
        _print_json(document)
        return
    acc = spec.accelerator
    facts = Table(title=spec.instance_type, show_header=False)
    facts.add_column("fact")
    facts.add_column("value")
    facts.add_row("vCPUs / memory", f"{spec.vcpus} / {spec.memory_gib:g} GiB")
    facts.add_row("architectures", ", ".join(spec.architectures))
    if acc is None:
        facts.add_row("accelerator", "none")
    else:
        facts.add_row("accelerator", f"{acc.count}x {acc.manufacturer} {acc.name} ({acc.kind})")
        facts.add_row("accelerator memory", f"{_gib(acc.memory_gib_per_device)} GiB each, {acc.total_memory_gib:g} GiB total")
        if acc.neuron_cores is not None:
            facts.add_row("NeuronCores", str(acc.neuron_cores))
    facts.add_row("network", f"{spec.network_performance}, {spec.maximum_network_cards} network card(s)")
    facts.add_row("EFA", f"yes, up to {spec.maximum_efa_interfaces} interfaces" if spec.efa_supported else "no")
    facts.add_row("placement strategies", ", ".join(spec.placement_strategies) or "-")
    facts.add_row("purchase", ", ".join(spec.usage_classes))
    facts.add_row("generation", "current" if spec.current_generation else "previous")
    facts.add_row("specs source", f"{provenance.specs_source} (as of {provenance.specs_as_of})")
    for patch in spec.patches:
        fields = ", ".join(f"{k}={v}" for k, v in patch.fields.items())
        facts.add_row("patched", f"{fields} (API: {dict(patch.api_reported)}); {patch.source}")
    out.print(facts)
    offers = Table(title=f"offerings and prices (prices as of {provenance.prices_as_of}; spot is a dated sample)")
    for column in ("region", "AZ IDs", "on-demand $/h", "spot $/h by AZ"):
        offers.add_column(column)
    for r in regions:
        spot = ", ".join(f"{az} {usd:.4f}" for az, usd in sorted(spec.spot_prices(r).items())) or "unknown"
        azs = ", ".join(spec.offered_azs(r)) or "not offered"
        offers.add_row(r, azs, _usd(spec.on_demand_price(r)), spot)
    out.print(offers)
    out.print(f"Offerings: {provenance.offerings_source} (as of {provenance.offerings_as_of}).")
    out.print(f"Prices: {provenance.prices_source}.")


@catalog_app.command("refresh")
def catalog_refresh(
    offline: bool = typer.Option(False, help="Query moto's bundled EC2 snapshot instead of AWS (needs moto)."),
    prices_csv: Optional[Path] = typer.Option(
        None, help="Take prices from this CSV instead of the Pricing API. Default with --offline: "
                   "data/prices/aws-ml-instance-prices.csv."),
    as_of: Optional[str] = typer.Option(None, help="Date stamped on the snapshot (YYYY-MM-DD). Default: today."),
    output: Path = typer.Option(Path(__file__).parent / "presets" / "data", help="Directory to write to."),
    region: Optional[list[str]] = typer.Option(None, help="Limit to these regions (repeatable). Default: all."),
) -> None:
    """Rebuild the catalog snapshot with boto3 (EC2 describe calls, Pricing API, spot price history)."""
    import boto3
    from rich.progress import Progress

    from mlcdk.presets import refresh

    try:
        date = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD")
    if offline and prices_csv is None:
        prices_csv = REPO_PRICES_CSV
    if prices_csv is not None and not prices_csv.is_file():
        fail(f"--prices-csv {str(prices_csv)!r} does not exist")

    def run(session: Any, specs_source: str, offerings_source: str) -> dict:
        prices_source = refresh.describe_price_source(prices_csv) if prices_csv else (
            f"AWS Pricing API get_products (on-demand, Linux, shared tenancy) and DescribeSpotPriceHistory, {date}")
        provenance = refresh.Provenance(specs_source, offerings_source, prices_source, date)
        regions = region or refresh.list_regions(session)
        with Progress(console=err, transient=True) as bar:
            steps = len(regions) * (3 if prices_csv is None else 2)
            task = bar.add_task("querying regions", total=steps)
            return refresh.refresh(session, price_csv=prices_csv, provenance=provenance, regions=regions,
                                   progress=lambda r: bar.update(task, advance=1, description=r))

    try:
        if offline:
            import moto
            from moto import mock_aws

            source = f"moto {moto.__version__} bundled snapshot of real EC2 API output"
            with mock_aws():
                session = boto3.Session(region_name="us-east-1", aws_access_key_id="offline",
                                        aws_secret_access_key="offline")
                snapshot = run(session, f"DescribeInstanceTypes: {source}",
                               f"DescribeInstanceTypeOfferings (availability-zone-id): {source}")
        else:
            session = boto3.Session()
            if session.get_credentials() is None:
                fail("no AWS credentials found: configure them (aws configure, AWS_PROFILE, or environment "
                     "variables), or run with --offline to rebuild from moto's bundled snapshot")
            session = boto3.Session(region_name=session.region_name or "us-east-1")
            snapshot = run(session, f"DescribeInstanceTypes (live, {date})",
                           f"DescribeInstanceTypeOfferings (availability-zone-id, live, {date})")
    except ConfigurationError as exc:
        fail(str(exc))
    output.mkdir(parents=True, exist_ok=True)
    for path in refresh.write_snapshot(snapshot, output):
        out.print(f"wrote {path}")
    count = len(snapshot["instance_types.json"]["instance_types"])
    out.print(f"{count} instance types, as of {date}.")


# --------------------------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------------------------


@presets_app.command("list")
def presets_list(
    file: Optional[Path] = typer.Option(None, help="Also load presets from this YAML or JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the named workload presets."""
    from mlcdk.presets import workloads

    try:
        presets = workloads.all_presets(file)
    except ConfigurationError as exc:
        fail(str(exc))
    if as_json:
        _print_json(presets)
        return
    table = Table(title=f"{len(presets)} presets")
    for column in ("name", "task", "instance type", "size", "purchase", "description"):
        table.add_column(column)
    for p in presets.values():
        size = f"{p.nodes} node(s)" if p.task != "inference" else f"{p.min_capacity}-{p.max_capacity}"
        table.add_row(p.name, p.task, p.instance_type, size, p.purchase_option, p.description)
    out.print(table)


@presets_app.command("show")
def presets_show(
    name: str = typer.Argument(..., help="e.g. llm-pretrain-trainium"),
    file: Optional[Path] = typer.Option(None, help="Also load presets from this YAML or JSON file."),
) -> None:
    """Every setting of one preset, with its source and reason."""
    from mlcdk.presets import workloads

    try:
        preset = workloads.get(name, file)
    except ConfigurationError as exc:
        fail(str(exc))
    _print_json(preset)


# --------------------------------------------------------------------------------------------
# advise
# --------------------------------------------------------------------------------------------

#: How a suggestion names each Workload field on the command line.
_ADVISE_FLAGS = {"max_nodes": "--max-nodes", "max_price_per_hour_usd": "--max-price", "purchase_option": "from --spot",
                 "regions": "--region", "accelerator": "--accelerator", "precision": "--precision"}


def _advise_row(rank: int, r: Any, with_job: bool) -> list[str]:
    cells = [str(rank), r.instance_type, r.accelerator, str(r.nodes), r.region, f"${r.hourly_cost_usd:,.2f}"]
    if with_job:
        cells += [f"{r.estimated_days:,.1f}", f"${r.estimated_job_cost_usd:,.0f}"]
    else:
        cells += [f"${r.monthly_cost_usd:,.0f}"]
    return cells + [f"{r.memory_available_gib:,.0f}", "yes" if r.efa else "-", r.reason]


def _emit_context(advice: Any) -> None:
    """Print the `cdk deploy` line that realizes the top recommendation; warn on stderr where it falls short."""
    from mlcdk import settings

    top, workload = advice[0], advice.workload
    option = "spot" if workload.purchase_option == "spot" else "on-demand"
    if workload.trains:
        stack, context = "TrainingStack", {"instance_type": top.instance_type, "nodes": str(top.nodes),
                                           "purchase_option": option}
    else:
        stack, context = "InferenceStack", {"inference_instance_type": top.instance_type,
                                            "inference_purchase_option": option}
    context["region"] = top.region
    context["stacks"] = stack  # only this stack is built, so the other's defaults need not fit the region
    sys.stdout.write(f"cdk deploy {stack} " + " ".join(f"-c {k}={v}" for k, v in context.items()) + "\n")
    try:
        settings.read_settings(context)
    except ConfigurationError as exc:
        err.print(f"warning: the app rejects this context as it stands: {exc}", highlight=False, markup=False)


@app.command("advise")
def advise_command(
    task: str = typer.Option(..., help="training, fine-tuning (full), lora or inference."),
    params: Optional[str] = typer.Option(None, help="Parameter count, e.g. 7B, 70B, 1.5T, 70e9."),
    model: Optional[str] = typer.Option(None, help="A known architecture instead of --params, e.g. llama-3-70b."),
    precision: str = typer.Option("bf16", help="fp32, bf16, fp16, fp8, int8 or int4."),
    region: Optional[list[str]] = typer.Option(
        None, help="Region(s), repeatable or comma-separated. Default: every region in the catalog."),
    spot: bool = typer.Option(False, "--spot", help="Rank at spot prices (the lowest dated AZ sample)."),
    accelerator: str = typer.Option("any", help="any (GPU or Neuron), trainium, inferentia, nvidia or cpu."),
    max_nodes: Optional[int] = typer.Option(None, help="Most nodes per configuration. Default: 64."),
    max_price: Optional[float] = typer.Option(None, help="Most USD per hour for the whole configuration."),
    tokens: Optional[str] = typer.Option(None, help="Training tokens, e.g. 1T: ranks by whole-job cost."),
    context: Optional[int] = typer.Option(None, help="Inference: tokens per sequence in the KV cache (default 4096)."),
    sequences: Optional[int] = typer.Option(None, help="Inference: sequences served at once (default 1)."),
    top: int = typer.Option(5, min=1, help="How many configurations to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    explain: bool = typer.Option(False, "--explain", help="Also show why candidates were excluded."),
    emit_context: bool = typer.Option(False, "--emit-context",
                                      help="Print only the `cdk deploy` line with -c flags for the top pick."),
) -> None:
    """The cheapest instance configurations that fit a model, ranked, with prices and reasons.

    Exit codes: 0 something fits; 2 a bad option, or nothing fits (the message says what would).
    """
    from mlcdk.presets.advisor import advise
    from mlcdk.presets.sizing import DEFAULT_MAX_NODES, Workload

    regions = tuple(part.strip() for item in region or () for part in item.split(",") if part.strip())
    try:
        workload = Workload(task=task, params=params, model=model, precision=precision, regions=regions,
                            purchase_option="spot" if spot else "on-demand", accelerator=accelerator,
                            max_price_per_hour_usd=max_price, training_tokens=tokens, context_tokens=context,
                            sequences=sequences, max_nodes=DEFAULT_MAX_NODES if max_nodes is None else max_nodes)
        advice = advise(workload, explain=explain)
    except ConfigurationError as exc:
        fail(str(exc))
    if not advice:
        suggestion = advice.suggestion()
        fail(f"{workload.describe()} needs {advice.memory.total_gib:,.1f} GiB; "
             + (suggestion.message(_ADVISE_FLAGS) if suggestion else
                "nothing fits, and no single change to the limits helps; --explain shows every exclusion"))
    if emit_context:
        _emit_context(advice)
        return
    shown = advice[:top]
    if as_json:
        document = {
            "workload": workload, "ranking": advice.ranking, "prices_as_of": advice.prices_as_of,
            "memory": {"total_gib": advice.memory.total_gib,
                       "parts": [{"label": p.label, "gib": p.bytes / 1024**3} for p in advice.memory.parts]},
            "fitting_configurations": len(advice), "recommendations": shown, "notes": advice.notes,
        }
        if explain:
            document["exclusions"] = advice.exclusions
        _print_json(document)
        return
    with_job = advice.ranking == "job cost"
    table = Table(title=f"{workload.describe()}: {len(shown)} of {len(advice)} fitting configurations, "
                        f"cheapest {'job' if with_job else 'per hour'} first")
    columns = ["#", "type", "accelerator", "nodes", "region", "$/h"]
    columns += ["days", "job $"] if with_job else ["$/month"]
    for column in columns + ["mem GiB", "EFA", "reason"]:
        table.add_column(column, justify="left" if column in ("type", "accelerator", "region", "EFA", "reason")
                         else "right")
    for rank, recommendation in enumerate(shown, 1):
        table.add_row(*_advise_row(rank, recommendation, with_job))
    out.print(table)
    out.print(f"Memory: {advice.memory.summary()}.", highlight=False)
    out.print(f"Prices: {'spot (lowest dated AZ sample)' if spot else 'on-demand'}, as of {advice.prices_as_of}.",
              highlight=False)
    for note in advice.notes:
        out.print(f"Note: {note}.", highlight=False)
    if explain:
        _print_exclusions(advice.exclusions)


def _print_exclusions(exclusions: Any) -> None:
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
        table.add_row(kind, str(len(items)), names, f"{example.instance_type} in {example.region}: {example.reason}")
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
