"""`ringloop status`: streams, consumer lag, projection checkpoints and dead letters."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app
from ops.status import collect_status, render_status


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="streams, consumer lag, projections, dead letters"
    )
    parser.add_argument("--json", action="store_true")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        status = await collect_status(app)
        print(json.dumps(status, default=str) if args.json else render_status(status))
        return 0

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream
