"""The ``diffana`` command (also ``python -m diffana``).

Each subcommand is registered by a small ``_add_*`` function that imports its implementation
lazily, so ``diffana --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from diffana._version import __version__
from diffana.errors import DiffanaError

__all__ = ["build_parser", "main"]

_err = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffana",
        description="A columnar HEP analysis as a differentiable program at cluster scale.",
    )
    parser.add_argument("--version", action="version", version=f"diffana {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


_COMMANDS: list = []


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DiffanaError as exc:
        _err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
