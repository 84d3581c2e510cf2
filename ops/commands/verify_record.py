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
        text = path.read_text()
    except OSError as err:
        return False, f"FAIL {path}: cannot read: {err}"
    try:
        data = json.loads(text)
    except ValueError as err:
        try:  # JSON Lines: one record a line (RingRift's self-play exports)
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            return False, f"FAIL {path}: cannot read: {err}"
    records = data if isinstance(data, list) else [data]
    if not records:
        return False, f"FAIL {path}: no game records in it (an empty file or list)"
    moves, notes, failures = 0, [], []
    for i, record in enumerate(records):
        prefix = f"record {i + 1}: " if len(records) > 1 else ""
        try:
            result = replay(record)
        except (ValueError, TypeError, AttributeError) as err:
            failures.append(f"{prefix}{err}")
            continue
        moves += result.moves_applied
        if not result.ok:
            failures.append(f"{prefix}{result.error}")
            continue
        notes += [f"{prefix}{w}" for w in result.warnings]
        if len(records) == 1:
            notes.insert(0, f"winner {result.winner} ({result.reason})")
    if failures:
        head = f"{len(failures)} of {len(records)} records fail; " if len(records) > 1 else ""
        return False, f"FAIL {path}: {head}{'; '.join(_capped(failures))}"
    summary = f"OK {path}: {len(records)} record(s), {moves} moves"
    if notes:
        summary += "; " + "; ".join(_capped(notes))
    return True, summary


def _capped(items: list[str]) -> list[str]:
    return items if len(items) < 6 else [*items[:5], f"... {len(items) - 5} more"]


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        ok, line = verify_file(path)
        print(line)
        failed += not ok
    return 1 if failed else 0
