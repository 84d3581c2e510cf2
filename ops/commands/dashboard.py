"""`ringloop dashboard`: the live web page (and the loop's /metrics) alone, against a bus.

It keeps its own in-memory read models (from the projector's snapshots when there are, then
following the streams), so it never touches a `ringloop up`'s projections.db and can run on
any host that reaches the NATS cluster.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app, stop_on_signals
from ops.settings import SettingsError
from ops.wiring import PROJECTIONS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dashboard", help="serve the live web dashboard alone")
    parser.add_argument(
        "--http-port", type=int, help="port of the page (default: [dashboard] port; 0 = free)"
    )
    parser.add_argument("--http-host", help="address to bind (default: [dashboard] host)")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        from ops.watching import announce, start_dashboard_alone

        stop = asyncio.Event()
        stop_on_signals(stop)
        app.start_views(list(PROJECTIONS), ":memory:")
        watching = await start_dashboard_alone(app)
        announce("dashboard", watching)
        try:
            await stop.wait()
        finally:
            await watching.stop()
        return 0

    def adjust(settings: Any) -> Any:
        if args.http_port is not None and not 0 <= args.http_port <= 65535:
            raise SettingsError(f"--http-port must lie in 0..65535, got {args.http_port}")
        changes = {"port": args.http_port, "host": args.http_host}
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return settings
        dashboard = type(settings.dashboard).model_validate(
            {**settings.dashboard.model_dump(), **changes}
        )
        return settings.model_copy(update={"dashboard": dashboard})

    return run_with_app(args, body, start_server=False, adjust=adjust)
