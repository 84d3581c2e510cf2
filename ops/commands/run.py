"""`ringloop run <handler>`: one handler (or the projector) as its own process, draining on
SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from events import DaemonStarted, DaemonStopped, Producer
from ops.app import App
from ops.commands._common import (
    add_bus_arguments,
    add_profile_argument,
    run_with_app,
    stop_on_signals,
    with_profile,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run one handler as its own process")
    parser.add_argument(
        "handler",
        help="a stage of handlers.REACTIONS: coordinator, curriculum, data-gate, elo-rater, "
        "evaluator, feedback, gating, promoter, selfplay, trainer; or projector (every read "
        "model into the state folder's projections.db, as `up` writes it)",
    )
    add_bus_arguments(parser)
    add_profile_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ops.projector import PROJECTOR
    from ops.wiring import stages

    known = [*stages(), PROJECTOR]
    if args.handler not in known:
        print(
            f"ringloop run: unknown handler {args.handler!r}; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    if args.handler == PROJECTOR:
        return run_projector(args)

    async def body(app: App) -> int:
        from ops.watching import announce, start_watching
        from ops.wiring import run_stages

        stop = asyncio.Event()
        stop_on_signals(stop)
        producer = Producer.current(args.handler)
        await app.store.append(DaemonStarted(daemon=args.handler, producer=producer))
        watching = await start_watching(app, dashboard=False, loop_metrics=False,
                                        handler_metrics=True,
                                        metrics_port=app.settings.metrics.run_port)  # fmt: skip
        announce(f"run {args.handler}", watching)
        try:
            # Each handler process keeps its own read models in memory, rebuilt from the log.
            await run_stages(app, [args.handler], stop, views_db=":memory:")
        finally:
            await watching.stop()
        await app.store.append(DaemonStopped(daemon=args.handler, producer=producer))
        return 0

    return run_with_app(
        args,
        body,
        start_server=False,
        adjust=lambda s: with_profile(s, args.profile),
        role=args.handler,
    )


def run_projector(args: argparse.Namespace) -> int:
    """Every read model into the state folder's projections.db until SIGTERM (exit 3 when
    another process, e.g. `up`, already writes it)."""
    from ops.projector import PROJECTOR, Projector

    async def body(app: App) -> int:
        projector = Projector(app)
        busy = projector.claim()
        if busy is not None:
            print(f"ringloop run projector: {busy}", file=sys.stderr)
            return 3
        stop = asyncio.Event()
        stop_on_signals(stop)
        producer = Producer.current(PROJECTOR)
        try:
            await app.store.append(DaemonStarted(daemon=PROJECTOR, producer=producer))
            projector.start()
            print(f"ringloop run projector: NATS {app.url}, writing "
                  f"{app.settings.projections_db}", file=sys.stderr, flush=True)  # fmt: skip
            await projector.wait(stop)
            await projector.stop()
            await app.store.append(DaemonStopped(daemon=PROJECTOR, producer=producer))
        finally:
            projector.release()
        return 0

    return run_with_app(args, body, start_server=False,
                        adjust=lambda s: with_profile(s, args.profile), role=PROJECTOR)  # fmt: skip
