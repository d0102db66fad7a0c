"""`mlcdk catalog list|show|refresh`: facts on accelerated EC2 instance types."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from mlcdk.cli._common import err, fail, out, plain, print_json
from mlcdk.errors import ConfigurationError

app = typer.Typer(help="Facts on accelerated EC2 instance types.", no_args_is_help=True)


def count_of(number: int, noun: str) -> str:
    """``1 instance type``, ``2 instance types``."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _spec_row(spec: Any, region: str | None) -> dict[str, Any]:
    acc = spec.accelerator
    return {
        "instance_type": spec.instance_type,
        "accelerator": None if acc is None else f"{acc.count}x {acc.name}",
        "accelerator_memory_gib": None if acc is None else round(acc.total_memory_gib, 1),
        "vcpus": spec.vcpus,
        "memory_gib": round(spec.memory_gib, 1),
        "efa_interfaces": spec.maximum_efa_interfaces if spec.efa_supported else 0,
        "previous_generation": spec.previous_generation,
        "regions": len(spec.offerings),
        "region": region,
        "on_demand_usd_per_hour": spec.on_demand_price(region) if region else None,
        "spot_usd_per_hour": spec.spot_price(region) if region else None,
    }


@app.command("list")
def catalog_list(
    family: Optional[str] = typer.Option(None, help="Only this family, e.g. trn1, p5, g6e."),
    accelerator: Optional[str] = typer.Option(
        None, help="trainium, inferentia, nvidia, amd, gpu, neuron, none (CPU-only), or a name prefix such as h100."),
    region: Optional[str] = typer.Option(None, help="Only types offered in this region; shows its prices."),
    min_accelerator_memory_gib: Optional[float] = typer.Option(None, help="Minimum total accelerator memory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List catalog instance types, with prices in --region. "prev" marks a previous-generation type."""
    from mlcdk.presets import catalog

    try:
        book = catalog.default_catalog()
        if family is not None:
            family = book.check_family(family, "--family")
        if region is not None:
            book.check_region(region, "--region")
        specs = book.filter(family=family, accelerator=accelerator, region=region,
                            min_accelerator_memory_gib=min_accelerator_memory_gib)
    except ConfigurationError as exc:
        fail(str(exc))
    rows = [_spec_row(spec, region) for spec in specs]
    provenance = book.provenance
    if as_json:
        print_json({"prices_as_of": provenance.prices_as_of, "instance_types": rows})
        return
    table = Table(title=count_of(len(rows), "instance type") + (f" in {region}" if region else ""))
    for column in ("type", "accelerator", "acc. mem GiB", "vCPUs", "mem GiB", "EFA", "gen.", "regions"):
        table.add_column(column, justify="left" if column in ("type", "accelerator", "gen.") else "right")
    if region:
        table.add_column("on-demand $/h", justify="right")
        table.add_column("spot $/h (min)", justify="right")
    for row in rows:
        cells = [row["instance_type"], row["accelerator"] or "-", _gib(row["accelerator_memory_gib"]),
                 str(row["vcpus"]), _gib(row["memory_gib"]), str(row["efa_interfaces"] or "-"),
                 "prev" if row["previous_generation"] else "", str(row["regions"])]
        if region:
            cells += [_usd(row["on_demand_usd_per_hour"]), _usd(row["spot_usd_per_hour"])]
        table.add_row(*cells)
    out.print(table)
    if region:
        out.print(f"Prices as of {provenance.prices_as_of} ({provenance.prices_source}). Spot prices are a dated sample.")


@app.command("show")
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
            catalog.default_catalog().check_region(region, "--region")
    except ConfigurationError as exc:
        fail(str(exc))
    provenance = catalog.default_catalog().provenance
    regions = [region] if region else list(spec.regions)
    if as_json:
        print_json(_show_document(spec, regions, provenance))
        return
    out.print(_facts_table(spec, provenance))
    offers = Table(title=f"offerings and prices (prices as of {provenance.prices_as_of}; spot is a dated sample)")
    for column in ("region", "AZ IDs", "on-demand $/h", "spot $/h by AZ"):
        offers.add_column(column)
    for r in regions:
        spot = ", ".join(f"{az} {usd:.4f}" for az, usd in sorted(spec.spot_prices(r).items())) or "unknown"
        azs = ", ".join(spec.offered_azs(r)) or "not offered"
        offers.add_row(r, azs, _usd(spec.on_demand_price(r)), spot)
    out.print(offers)
    out.print(f"Offerings: {spec.offerings_source} (snapshot as of {provenance.offerings_as_of}).")
    out.print(f"Prices: {provenance.prices_source}.")


def _show_document(spec, regions: list[str], provenance) -> dict:
    """``catalog show --json``: the spec's facts, offerings and prices in ``regions``, and their provenance."""
    from mlcdk.presets import capacity_blocks

    document = plain(spec)
    document["previous_generation"] = spec.previous_generation
    document["capacity_blocks"] = capacity_blocks.sells_capacity_blocks(spec)
    document["offerings"] = {r: list(spec.offered_azs(r)) for r in regions}
    document["prices"] = {r: {"on_demand": spec.on_demand_price(r), "spot": dict(spec.spot_prices(r))}
                          for r in regions}
    document["provenance"] = plain(provenance)
    return document


def _facts_table(spec, provenance) -> Table:
    """``catalog show``: one row per fact, with its source."""
    from mlcdk.presets import capacity_blocks

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
    facts.add_row("Capacity Blocks", ("sold" if capacity_blocks.sells_capacity_blocks(spec) else "not sold")
                  + " for this type (the API's SupportedUsageClasses)")
    facts.add_row("generation", "previous generation (the source's CurrentGeneration is false)"
                  if spec.previous_generation else "current")
    facts.add_row("specs source", f"{spec.specs_source} (snapshot as of {provenance.specs_as_of})")
    for patch in spec.patches:
        fields = ", ".join(f"{k}={v}" for k, v in patch.fields.items())
        facts.add_row("patched", f"{fields} (API: {dict(patch.api_reported)}); {patch.source}")
    return facts


@app.command("refresh")
def catalog_refresh(
    offline: bool = typer.Option(False, help="Query moto's bundled EC2 snapshot instead of AWS (needs moto)."),
    prices_csv: Optional[Path] = typer.Option(
        None, help="Take prices from this CSV (plain or .gz) instead of the Pricing API. Default with --offline: "
                   "the public price data bundled with mlcdk (a copy of data/prices/ in the repository)."),
    as_of: Optional[str] = typer.Option(
        None, help="Date stamped on the snapshot (YYYY-MM-DD). Default: the price data's date (the first date in "
                   "its .source.txt) with --prices-csv or --offline; today for a live refresh."),
    output: Optional[Path] = typer.Option(
        None, help="Directory to write to. Default: $XDG_DATA_HOME/mlcdk/catalog (~/.local/share/mlcdk/catalog); "
                   "never the installed package. Load the result with MLCDK_CATALOG=<directory>."),
    region: Optional[list[str]] = typer.Option(None, help="Limit to these regions (repeatable). Default: all."),
) -> None:
    """Rebuild the catalog snapshot with boto3 (EC2 describe calls, Pricing API, spot price history)."""
    from rich.progress import Progress

    from mlcdk.fetch import refresh
    from mlcdk.presets.catalog import CATALOG_ENV, Provenance

    if offline and prices_csv is None:
        prices_csv = refresh.PACKAGED_PRICE_CSV
    if prices_csv is not None and not prices_csv.is_file():
        fail(f"--prices-csv {str(prices_csv)!r} does not exist")
    date = _snapshot_date(as_of, prices_csv)
    output = output if output is not None else refresh.user_data_dir()

    def run(session: Any, specs_source: str, offerings_source: str) -> dict:
        prices_source = refresh.describe_price_source(prices_csv) if prices_csv else (
            f"AWS Pricing API get_products (on-demand, Linux, shared tenancy) and DescribeSpotPriceHistory, {date}")
        provenance = Provenance.dated(specs_source, offerings_source, prices_source, date)
        regions = region or refresh.list_regions(session)
        with Progress(console=err, transient=True) as bar:
            steps = len(regions) * (3 if prices_csv is None else 2)
            task = bar.add_task("querying regions", total=steps)
            return refresh.refresh(session, price_csv=prices_csv, provenance=provenance, regions=regions,
                                   progress=lambda r: bar.update(task, advance=1, description=r))

    snapshot = _query(offline, run, date)
    _write_snapshot(snapshot, output, date)


def _snapshot_date(as_of: str | None, prices_csv: Path | None) -> dt.date:
    """--as-of, else the price data's date, else today (a live refresh)."""
    from mlcdk.fetch import refresh

    try:
        date = dt.date.fromisoformat(as_of) if as_of else (
            refresh.price_source_date(prices_csv) if prices_csv is not None else dt.date.today())
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD")
    if date is None:
        fail(f"--as-of is needed: the price data {str(prices_csv)!r} records no date "
             f"(no YYYY-MM-DD in {refresh.price_note(prices_csv).name})")
    return date


def _query(offline: bool, run, date: dt.date) -> dict:
    """``run(session, specs_source, offerings_source)`` against moto's bundled snapshot, or live AWS."""
    import boto3

    try:
        if offline:
            try:
                from unittest import mock

                import moto
                from moto import mock_aws
            except ImportError:
                fail("--offline needs moto (pip install 'moto[ec2]>=5.2.5'), whose bundled EC2 snapshot it queries")

            source = f"moto {moto.__version__} bundled snapshot of real EC2 API output"
            # moto makes its ~5,200 sample AMIs for every region a call touches unless told not to
            # (moto/settings.py); the refresh reads types and offerings only (make catalog: 13.6 s -> 8.6 s).
            with mock.patch.dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false"), mock_aws():
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
    return snapshot


def _write_snapshot(snapshot: dict, output: Path, date: dt.date) -> None:
    from mlcdk.fetch import refresh
    from mlcdk.presets.catalog import CATALOG_ENV

    try:
        output.mkdir(parents=True, exist_ok=True)
        written = refresh.write_snapshot(snapshot, output)
    except OSError as exc:
        fail(f"--output {str(output)!r}: cannot write the snapshot ({exc.strerror})")
    for path in written:
        out.print(f"wrote {path}", soft_wrap=True)  # paths are copied whole: never folded at the width
    count = len(snapshot["instance_types.json"]["instance_types"])
    out.print(f"{count_of(count, 'instance type')}, as of {date}.")
    if output.resolve() != refresh.DATA_DIR.resolve():
        out.print(f"Use it with: export {CATALOG_ENV}={output}", soft_wrap=True)
