"""`ringloop run <handler>`: one handler as its own process, draining on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from events import DaemonStarted, DaemonStopped
from handlers.runtime import HandlerRuntime, run_until_stopped
from ops.app import HANDLERS, App
from ops.commands._common import (
    add_bus_arguments,
    add_profile_argument,
    run_with_app,
    stop_on_signals,
    with_profile,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run one handler as its own process")
    parser.add_argument("handler", choices=sorted(HANDLERS))
    add_bus_arguments(parser)
    add_profile_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        stop = asyncio.Event()
        stop_on_signals(stop)
        # Each handler process keeps its own read models in memory, rebuilt from the log.
        runtime = HandlerRuntime(app.handler_spec(args.handler, views_db=":memory:"), app.store)
        await app.store.append(DaemonStarted(daemon=args.handler, producer=runtime.producer))
        await run_until_stopped([runtime], stop)
        await app.store.append(DaemonStopped(daemon=args.handler, producer=runtime.producer))
        return 0

    return run_with_app(
        args, body, start_server=False, adjust=lambda s: with_profile(s, args.profile)
    )
