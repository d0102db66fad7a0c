"""Copy instance types that moto's current EC2 snapshot lacks from an older moto wheel into supplements.json.

The bundled catalog is generated from the DescribeInstanceTypes and DescribeInstanceTypeOfferings snapshot
that the installed moto ships. Later moto releases dropped some types that users still run and the seed
guides name (p3 after 5.1.x, g3/g3s after 5.0.0, g4ad and dl1 after 5.2.1). Older moto wheels still hold
the real API output for them; this script copies it verbatim, with the wheel's version as the source, into
``mlcdk/presets/data/supplements.json``, which ``mlcdk catalog refresh`` reads for the types the API lacks.

    pip download --no-deps -d /tmp/moto moto==5.1.22
    python scripts/catalog_supplements.py /tmp/moto/moto-5.1.22-py3-none-any.whl p3.2xlarge p3.8xlarge p3.16xlarge

Standard library only. The output is canonical JSON, so rerunning with the same wheels changes nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPPLEMENTS = ROOT / "mlcdk" / "presets" / "data" / "supplements.json"
RESOURCES = "moto/ec2/resources/"


def _read_json(archive: zipfile.ZipFile, stem: str) -> object:
    """``stem``.json.gz or ``stem``.json inside the wheel (older moto releases stored plain JSON)."""
    names = set(archive.namelist())
    if stem + ".json.gz" in names:
        return json.loads(gzip.decompress(archive.read(stem + ".json.gz")))
    return json.loads(archive.read(stem + ".json"))


def extract(wheel: Path, instance_types: list[str]) -> dict[str, dict]:
    match = re.match(r"moto-([^-]+)-", wheel.name)
    if not match:
        sys.exit(f"{wheel.name}: not a moto wheel (expected moto-<version>-...whl)")
    version = match.group(1)
    with zipfile.ZipFile(wheel) as archive:
        described = _read_json(archive, RESOURCES + "instance_types")
        prefix = RESOURCES + "instance_type_offerings/availability-zone-id/"
        offerings: dict[str, dict[str, list[str]]] = {}
        for name in sorted(n for n in archive.namelist() if n.startswith(prefix)):
            region = name[len(prefix):].split(".json")[0]
            for offer in _read_json(archive, prefix + region):
                offerings.setdefault(offer["InstanceType"], {}).setdefault(region, []).append(offer["Location"])
    snapshot = f"moto {version} bundled snapshot of real EC2 API output"
    out = {}
    for name in instance_types:
        if name not in described:
            sys.exit(f"{name} is not in {wheel.name}'s DescribeInstanceTypes snapshot")
        out[name] = {
            "specs_source": f"DescribeInstanceTypes: {snapshot} (moto/ec2/resources/instance_types), copied verbatim",
            "offerings_source": f"DescribeInstanceTypeOfferings (availability-zone-id): {snapshot}",
            "describe_instance_types": described[name],
            "offerings": {region: sorted(set(azs)) for region, azs in sorted(offerings.get(name, {}).items())},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="a moto wheel, e.g. moto-5.1.22-py3-none-any.whl")
    parser.add_argument("instance_types", nargs="+")
    args = parser.parse_args()
    document = json.loads(SUPPLEMENTS.read_text()) if SUPPLEMENTS.exists() else {"instance_types": {}}
    document["instance_types"].update(extract(args.wheel, args.instance_types))
    document["instance_types"] = dict(sorted(document["instance_types"].items()))
    SUPPLEMENTS.write_text(json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(args.instance_types)} entr{'y' if len(args.instance_types) == 1 else 'ies'} to {SUPPLEMENTS}")


if __name__ == "__main__":
    main()
