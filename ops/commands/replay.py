"""`ringloop replay`: rebuild read models from sequence 1, as of a point, or check the live ones."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app, stream_sequence
from ops.replay import check, rebuild
from ops.wiring import PROJECTIONS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("replay", help="rebuild projections from the event log")
    parser.add_argument("--projection", default="all", help="a projection name or 'all'")
    parser.add_argument("--out", type=Path, help="fresh SQLite file for the rebuild")
    until = parser.add_mutually_exclusive_group()
    until.add_argument(
        "--until-seq", type=stream_sequence(0), help="state as of this stream sequence"
    )
    until.add_argument(
        "--until-time", type=_parse_time, help="state as of this UTC time (ISO 8601)"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare a rebuild with the live read models"
    )
    parser.add_argument("--json", action="store_true")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a timezone (e.g. Z) in {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    names = sorted(PROJECTIONS) if args.projection == "all" else [args.projection]

    async def body(app: App) -> int:
        if args.check:
            problems = await check(app, names)
            for problem in problems:
                print(problem)
            print(f"replay check: {len(names)} projection(s), {len(problems)} difference(s)")
            return 1 if problems else 0
        out = args.out or app.settings.state_dir / f"replay-{datetime.now():%Y%m%dT%H%M%S}.db"
        results = await rebuild(
            app, names, out, until_seq=args.until_seq, until_time=args.until_time
        )
        summary = [
            {
                "projection": r.name,
                "position": r.position,
                "rows": {t: r.state.count(t) for t in r.state.data},
            }
            for r in results
        ]
        if args.json:
            print(json.dumps({"out": str(out), "projections": summary}))
        else:
            for item in summary:
                print(
                    f"{item['projection']}: rebuilt to seq {item['position']} → {out} {item['rows']}"
                )
        return 0

    if args.projection != "all" and args.projection not in PROJECTIONS:
        print(
            f"ringloop: unknown projection {args.projection!r}; known: {', '.join(sorted(PROJECTIONS))}",
            file=sys.stderr,
        )
        return 2
    return run_with_app(args, body, setup=False)  # reads the log, never changes a stream
