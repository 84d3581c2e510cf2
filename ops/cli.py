"""The `ringloop` command line: one module per command under ops.commands, imported only when chosen.

Discovery is lazy so that `ringloop --help` and every command start fast: the command names
come from the module file names (``import_elo_db.py`` is ``import-elo-db``) and their one-line
help from each module's docstring (read from the source, not imported). Only the chosen
command's module is imported and its ``register(subparsers)`` adds the full parser.
"""

from __future__ import annotations

import argparse
import ast
import pkgutil
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

import ops.commands

COMMANDS_DIR = Path(ops.commands.__path__[0])


def command_modules() -> dict[str, str]:
    """Command name -> module name, for every public module in ops.commands."""
    infos = pkgutil.iter_modules([str(COMMANDS_DIR)])
    names = sorted(info.name for info in infos if not info.name.startswith("_"))
    return {name.replace("_", "-"): name for name in names}


def command_help(module: str) -> str:
    """The first docstring line of a command module, without its "`ringloop …`:" prefix."""
    source = (COMMANDS_DIR / f"{module}.py").read_text()
    doc = ast.get_docstring(ast.parse(source)) or ""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    if line.startswith("`") and "`:" in line:
        line = line.split("`:", 1)[1].strip()
    return line


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: the chosen command's full parser, the others as names and help.

    A command module defines ``register(subparsers)`` which adds a parser and sets
    ``func`` (a callable taking the parsed namespace and returning an exit code).
    ``chosen="*"`` registers every command (tests use it to check each one).
    """
    parser = argparse.ArgumentParser(prog="ringloop", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in command_modules().items():
        if chosen in (name, "*"):
            import_module(f"ops.commands.{module}").register(subparsers)
        else:
            subparsers.add_parser(name, help=command_help(module), add_help=False)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the line: the first argument that is not an option."""
    known = command_modules()
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in known else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from handlers.allocator import keep_freed_memory

    keep_freed_memory()  # before any network runs in this process (handlers.allocator)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(argv))
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
