"""The command line's lazy discovery: names and help without imports, each module registers its own name."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ops.cli import build_parser, command_help, command_modules

ROOT = Path(__file__).resolve().parent.parent


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_module_registers_the_name_its_file_gives() -> None:
    full = _subcommands(build_parser("*"))
    assert sorted(full) == sorted(command_modules())
    for name, sub in full.items():
        nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        assert nested or sub.get_default("func") is not None, name


def test_every_command_has_one_line_of_help() -> None:
    for name, module in command_modules().items():
        assert command_help(module), f"ops/commands/{module}.py needs a docstring ({name})"


def test_help_imports_no_command_module_and_no_torch() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from ops.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('ops.commands.', 'torch', 'ops.app', 'scipy')))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_chosen_command_gets_its_full_parser() -> None:
    args = build_parser("verify-record").parse_args(["verify-record", "a.json"])
    assert args.files == [Path("a.json")]
