"""The state of one emulator run, shared by its steps (mlcdk.emulator.run) and its teardown."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlcdk.emulator import assembly, server
from mlcdk.emulator.cdk import CdkCli
from mlcdk.emulator.options import EmulateOptions
from mlcdk.emulator.readback import Clients, StackView


def client_factory(endpoint: str, region: str) -> Clients:
    """boto3 clients on the emulator, with dummy credentials."""
    import boto3

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing", region_name=region)
    return lambda service: session.client(service, endpoint_url=endpoint)


@dataclass
class Session:
    options: EmulateOptions
    cli: CdkCli
    #: The run's temporary directory: moto.log, cdk.out, the children's TMPDIR.
    work: Path
    run_id: str
    moto: server.MotoServer | None = None
    env: dict[str, str] = field(default_factory=dict)
    stacks: list[assembly.Stack] = field(default_factory=list)
    views: dict[str, StackView] = field(default_factory=dict)

    @property
    def outdir(self) -> Path:
        return self.work / "cdk.out"

    def clients(self, region: str | None = None) -> Clients:
        return client_factory(self.moto.endpoint, region or self.options.region)
