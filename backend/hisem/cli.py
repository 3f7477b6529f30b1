"""`hisem` command line: one sub-command per module in hisem.commands.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` to a callable ``(args) -> int``. Keeping the commands in their own modules means the
heavy imports (torch, pycocoevalcap) happen only for the command that runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hisem import __version__

# Order is the order shown in --help.
COMMANDS = ("synth", "train", "calibrate", "evaluate", "card", "export", "models", "caption", "serve", "bench")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hisem", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hisem {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hisem.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (CommandError, FileNotFoundError, ValueError) as exc:
        print(f"hisem {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run as hisem.cli, not __main__: the commands raise hisem.cli.CommandError, which this module's
    # __main__ copy would not catch.
    from hisem.cli import main as _main

    sys.exit(_main())
