"""The emulator's own child processes (not a user command; users run ``mlcdk emulate``):

    python -m mlcdk.emulator guard FD -- COMMAND...      run COMMAND in a process group that ends with the driver
    python -m mlcdk.emulator serve PORT --lifeline-fd FD --driver PID [--clean-up DIR]   the moto server
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["guard"]:
        if len(argv) < 4 or argv[2] != "--":
            print("usage: python -m mlcdk.emulator guard FD -- COMMAND...", file=sys.stderr)
            return 2
        from mlcdk.emulator.processes import guard

        return guard(int(argv[1]), argv[3:])
    parser = argparse.ArgumentParser(prog="python -m mlcdk.emulator", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("port", type=int)
    serve.add_argument("--lifeline-fd", type=int, required=True)
    serve.add_argument("--driver", type=int, required=True)
    serve.add_argument("--clean-up", type=Path)
    args = parser.parse_args(argv)
    from mlcdk.emulator.server import serve as serve_moto

    serve_moto(args.port, args.lifeline_fd, args.driver, args.clean_up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
