"""The `ringloop` command line: discovers one module per command under ops.commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import ops.commands


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; every module in ops.commands adds its own subcommand.

    A command module defines ``register(subparsers)`` which adds a parser and sets
    ``func`` (a callable taking the parsed namespace and returning an exit code).
    """
    parser = argparse.ArgumentParser(prog="ringloop", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(ops.commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"ops.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
