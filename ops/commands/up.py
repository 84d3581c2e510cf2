"""`ringloop up`: the embedded server (unless --nats), every projection and every handler."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from events import DaemonStarted, DaemonStopped, Producer
from handlers.runtime import HandlerRuntime, run_until_stopped
from ops.app import HANDLERS, PROJECTIONS, App, ProjectorLock, projector_owner
from ops.commands._common import add_bus_arguments, run_with_app, stop_on_signals


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="run the whole loop (embedded NATS by default)")
    parser.add_argument("--handlers", help="comma-separated subset of handlers to run")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        lock = ProjectorLock(app.settings)
        if not lock.acquire():
            print(
                f"ringloop: {app.settings.state_dir} is already served by {projector_owner(app.settings)}",
                file=sys.stderr,
            )
            return 3
        try:
            return await serve(app, args)
        finally:
            lock.release()

    return run_with_app(args, body)


async def serve(app: App, args: argparse.Namespace) -> int:
    if True:
        stop = asyncio.Event()
        stop_on_signals(stop)
        names = args.handlers.split(",") if args.handlers else sorted(HANDLERS)
        for name in PROJECTIONS:
            app.projection_runner(name).start()
        runtimes = [HandlerRuntime(app.handler_spec(name), app.store) for name in names]
        producer = Producer.current("up")
        await app.store.append(DaemonStarted(daemon="up", producer=producer))
        url = app.server.url if app.server else app.settings.nats.url
        print(
            f"ringloop up: NATS {url}, state {app.settings.state_dir}, "
            f"handlers {', '.join(names)}; Ctrl-C stops cleanly",
            file=sys.stderr,
        )
        await run_until_stopped(runtimes, stop)
        await app.store.append(DaemonStopped(daemon="up", producer=producer))
        return 0
