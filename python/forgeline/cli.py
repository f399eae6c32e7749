"""The ``forgeline`` command. Exit codes: 0 ok, 1 drift detected, 2 usage or input error."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import ForgelineError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="forgeline", description=__doc__)
    p.add_argument("--version", action="version", version=f"forgeline {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_subparsers(dest="command", metavar="COMMAND")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ForgelineError, OSError) as exc:
        if args.debug:
            raise
        print(f"forgeline: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
