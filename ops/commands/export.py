"""`ringloop export model|games`: a model's checkpoint with a JSON sidecar, or a config's games as RingRift records.

`export model <id|best> --config C --out FILE` writes the checkpoint and FILE.json (lineage,
sha256, size, evaluation and decision). `export games --config C [--from T] [--to T]
[--purpose P] --out FILE.jsonl` writes one RingRift game record a line; `ringloop
verify-record FILE.jsonl` replays them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.commands.replay import _parse_time


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("export", help="export a model or a config's games")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    model = kinds.add_parser("model", help="a checkpoint plus a JSON sidecar (lineage, sha256)")
    model.add_argument("model", metavar="ID|best", help="a model id, or best for the current best")
    games = kinds.add_parser("games", help="games as RingRift game records, one a line")
    games.add_argument(
        "--from", dest="start", type=_parse_time, help="appended at or after (ISO 8601)"
    )
    games.add_argument(
        "--to", dest="end", type=_parse_time, help="appended at or before (ISO 8601)"
    )
    games.add_argument("--purpose", choices=["selfplay", "eval", "import"], help="only these games")
    for sub in (model, games):
        sub.add_argument("--config", required=True, help="e.g. square8_2p")
        sub.add_argument("--out", type=Path, required=True, help="file to write")
        add_bus_arguments(sub)
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from events.config import split_config
    from ops.export import ExportError, export_games, export_model

    try:
        split_config(args.config)
    except ValueError as exc:
        print(f"ringloop export: {exc}", file=sys.stderr)
        return 2
    if args.kind == "games" and args.start and args.end and args.start > args.end:
        print(f"ringloop export: --from {args.start} is after --to {args.end}", file=sys.stderr)
        return 2

    async def body(app: App) -> int:
        try:
            if args.kind == "model":
                done = await export_model(app, args.model, args.config, args.out)
                print(f"model {done.model_id}: {done.checkpoint} ({done.size} bytes, sha256 "
                      f"{done.sha256}), sidecar {done.sidecar}")  # fmt: skip
                return 0
            count = await export_games(app, args.config, args.out, start=args.start,
                                       end=args.end, purpose=args.purpose or "*")  # fmt: skip
        except ExportError as exc:
            print(f"ringloop export: {exc}", file=sys.stderr)
            return 1
        print(f"{count} {args.config} game record(s) written to {args.out}")
        return 0

    return run_with_app(args, body)
