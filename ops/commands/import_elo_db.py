"""`ringloop import-elo-db PATH`: a RingRift unified_elo.db's matches onto the log, for the rater.

Appends each importable match as MatchCompleted (context "import") in the original order
and prints a summary: read, imported, already present, skipped with reasons and examples.
Re-running appends nothing new. The elo-rater (`ringloop up` or `ringloop run elo-rater`)
rates the imported matches; see ops.elo_import for the rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ops import auth
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.elo_import import import_elo_db


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import-elo-db", help="append a RingRift unified_elo.db's matches as MatchCompleted"
    )
    parser.add_argument("path", type=Path, help="the RingRift unified_elo.db (read only)")
    parser.add_argument("--dry-run", action="store_true", help="report only; append nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


SQLITE_HEADER = b"SQLite format 3\x00"


def run(args: argparse.Namespace) -> int:
    problem = sqlite_problem(args.path)
    if problem:
        print(f"ringloop import-elo-db: {problem}", file=sys.stderr)
        return 2

    async def body(app: App) -> int:
        report = await import_elo_db(app, args.path, dry_run=args.dry_run)
        if args.json:
            print(json.dumps({**report.as_dict(), "dry_run": args.dry_run}, indent=2))
        else:
            prefix = "dry run: would append; " if args.dry_run else ""
            print(prefix + report.summary())
        return 0

    return run_with_app(args, body, role=auth.ADMIN_ROLE)


def sqlite_problem(path: Path) -> str | None:
    """Why `path` cannot be a RingRift unified_elo.db (None when it is an SQLite file)."""
    if not path.exists():
        return f"no such file {str(path)!r}"
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"cannot read {str(path)!r}: {exc.strerror or exc}"
    if header != SQLITE_HEADER:
        return f"{str(path)!r} is not an SQLite database (expected a RingRift unified_elo.db)"
    return None
