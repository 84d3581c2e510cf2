"""`ringloop verify-record FILE...`: replays RingRift game records through the engine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.record import replay


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify-record", help="replay RingRift game-record JSON files move by move"
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(func=run)


def verify_file(path: Path) -> tuple[bool, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return False, f"FAIL {path}: cannot read: {err}"
    records = data if isinstance(data, list) else [data]
    lines_ok, moves, notes = True, 0, []
    for i, record in enumerate(records):
        try:
            result = replay(record)
        except ValueError as err:
            return False, f"FAIL {path}: record {i + 1}: {err}"
        moves += result.moves_applied
        if not result.ok:
            prefix = f"record {i + 1}: " if len(records) > 1 else ""
            return False, f"FAIL {path}: {prefix}{result.error}"
        notes += result.warnings
        if len(records) == 1:
            notes.insert(0, f"winner {result.winner} ({result.reason})")
    summary = f"OK {path}: {len(records)} record(s), {moves} moves"
    if notes:
        summary += "; " + "; ".join(
            notes if len(notes) < 6 else [*notes[:5], f"... {len(notes) - 5} more"]
        )
    return lines_ok, summary


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        ok, line = verify_file(path)
        print(line)
        failed += not ok
    return 1 if failed else 0
