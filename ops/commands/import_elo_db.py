"""`ringloop import-elo-db PATH`: a RingRift unified_elo.db's matches onto the log, for the rater.

Appends each importable match as MatchCompleted (context "import") in the original order
and prints a summary: read, imported, already present, skipped with reasons and examples.
Re-running appends nothing new. The elo-rater (`ringloop up` or `ringloop run elo-rater`)
rates the imported matches; see ops.elo_import for the rules.
"""

from __future__ import annotations

import argparse
import json
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


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        report = await import_elo_db(app, args.path, dry_run=args.dry_run)
        if args.json:
            print(json.dumps({**report.as_dict(), "dry_run": args.dry_run}, indent=2))
        else:
            prefix = "dry run: would append; " if args.dry_run else ""
            print(prefix + report.summary())
        return 0

    return run_with_app(args, body, role=auth.ADMIN_ROLE)
