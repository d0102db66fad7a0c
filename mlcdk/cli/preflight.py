"""`mlcdk preflight`: quota, offering, reservations and AMI, checked read-only before `cdk deploy`.

Exit codes: 0 no check failed (checks that could not run are listed, and do not fail); 1 a check failed;
2 a usage error (one line naming the flag, the value and what is allowed).
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from mlcdk.cli._common import fail, print_json
from mlcdk.errors import ConfigurationError

app = typer.Typer()

#: How errors name each argument of mlcdk.aws.preflight.Request.create on the command line.
FLAGS = {"region": "--region", "instance_type": "--instance-type", "nodes": "--nodes", "spot": "--spot",
         "reservation_ids": "--reservation-id", "availability_zone_ids": "--availability-zone-id",
         "engine": "--engine"}


def _session() -> Any:
    """The user's boto3 session (profile, environment variables, instance role); tests replace it."""
    import boto3

    return boto3.Session()


@app.command("preflight")
def preflight_command(
    region: str = typer.Option(..., help="The region to deploy to, e.g. us-east-1."),
    instance_type: str = typer.Option(..., help="e.g. trn1.32xlarge"),
    nodes: int = typer.Option(..., help="How many instances the cluster runs at most."),
    spot: bool = typer.Option(False, "--spot", help="Check the spot vCPU quota instead of the on-demand one."),
    reservation_id: Optional[list[str]] = typer.Option(
        None, "--reservation-id", help="A Capacity Reservation or Capacity Block the cluster uses (repeatable)."),
    availability_zone_id: Optional[list[str]] = typer.Option(
        None, "--availability-zone-id", help="An AZ ID the cluster uses, e.g. use1-az4 (repeatable). Default: any."),
    engine: str = typer.Option("batch", help="batch (ECS-optimized AMI) or nodes (DLAMI): which AMI to check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Will the cluster get capacity? Checks quota, offering, reservations and AMI with your AWS credentials.

    Read-only. Each check passes, fails (with what to do), or could not run (no credentials, access denied).
    Exit codes: 0 nothing failed; 1 a check failed; 2 a bad option.
    """
    from botocore.exceptions import ProfileNotFound

    from mlcdk.aws import preflight

    try:
        request = preflight.Request.create(preflight.Arguments(
            region=region, instance_type=instance_type, nodes=nodes, spot=spot, reservation_ids=reservation_id or (),
            availability_zone_ids=availability_zone_id, engine=engine), names=FLAGS)
        report = preflight.run(request, _session())
    except ConfigurationError as exc:
        fail(str(exc))
    except ProfileNotFound as exc:
        fail(str(exc))
    if as_json:
        print_json({"region": report.region, "instance_type": report.instance_type, "nodes": report.nodes,
                    "spot": report.spot, "engine": report.engine, "reservation_ids": report.reservation_ids,
                    "availability_zone_ids": report.availability_zone_ids, "result": report.result,
                    "exit_code": report.exit_code, "checks": report.checks})
    else:
        _print_text(report)
    raise typer.Exit(report.exit_code)


def _print_text(report: Any) -> None:
    width = max(len(c.name) for c in report.checks)
    lines = [f"{c.status.upper():<8} {c.name:<{width}}  {c.detail}" for c in report.checks]
    fixes = [f"  {c.name}: {c.fix}" for c in report.failed if c.fix]
    if fixes:
        lines += ["", "To fix:", *fixes]
    if report.not_run:
        lines += ["", "Could not run: " + ", ".join(c.name for c in report.not_run) + " (no result; not a failure)."]
        hints = dict.fromkeys(c.fix for c in report.not_run if c.fix)
        lines += [f"  {hint}" for hint in hints]
    purchase = "spot" if report.spot else "on-demand"
    verdict = {"pass": "every check passed", "incomplete": "no check failed, some could not run",
               "fail": f"{len(report.failed)} check(s) failed"}[report.result]
    lines += ["", f"{report.nodes} × {report.instance_type} ({purchase}) in {report.region}: {verdict}."]
    typer.echo("\n".join(lines))
