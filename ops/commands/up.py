"""`ringloop up`: the whole loop — embedded server (unless --nats), projections, every handler."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from events import DaemonStarted, DaemonStopped, Producer
from handlers.coordinator import LoopAlreadyRunning, acquire_loop_lease
from ops import auth
from ops.app import PROJECTIONS, App, ProjectorLock, projector_owner
from ops.children import Children, child_arguments
from ops.commands._common import (
    add_bus_arguments,
    add_profile_argument,
    run_with_app,
    stop_on_signals,
    with_profile,
)
from ops.progress import Progress
from projections.snapshot import SnapshotWriter, SnapshotWriters

HEAVY_STAGES = auth.HEAVY_STAGES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="run the whole loop (embedded NATS by default)")
    parser.add_argument("--generations", type=int, help="stop after N promotion decisions")
    parser.add_argument("--handlers", help="comma-separated subset of handlers to run")
    parser.add_argument(
        "--selfplay-workers", type=int, default=1, help="selfplay processes to run (default 1)"
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run the CPU-heavy stages (selfplay, trainer, evaluator) in this process "
        "instead of one child process each",
    )
    parser.add_argument(
        "--progress-every", type=float, default=5.0, help="seconds between progress lines (0 = off)"
    )
    add_bus_arguments(parser)
    add_profile_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.generations is not None and args.generations < 1:
        print(f"ringloop: --generations must be ≥ 1, got {args.generations}", file=sys.stderr)
        return 2
    if args.selfplay_workers < 1:
        print(
            f"ringloop: --selfplay-workers must be ≥ 1, got {args.selfplay_workers}",
            file=sys.stderr,
        )
        return 2

    async def body(app: App) -> int:
        if args.inline and auth.enabled(app.settings.state_dir):
            print(
                "ringloop: --inline cannot run under least privilege (the loop's credential may "
                f"not publish what {', '.join(HEAVY_STAGES)} emit); drop --inline",
                file=sys.stderr,
            )
            return 2
        lock = ProjectorLock(app.settings)
        if not lock.acquire():
            print(
                f"ringloop: {app.settings.state_dir} is already served by {projector_owner(app.settings)}",
                file=sys.stderr,
            )
            return 3
        try:
            lease = await acquire_loop_lease(app.store, app.settings.loop)
        except LoopAlreadyRunning as exc:
            lock.release()
            print(f"ringloop: {exc}", file=sys.stderr)
            return 3
        try:
            return await serve(app, args)
        finally:
            await lease.release()
            lock.release()

    return run_with_app(
        args, body, adjust=lambda s: with_profile(s, args.profile), role=auth.LOOP_ROLE
    )


async def serve(app: App, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    from ops.wiring import run_stages, stages

    names = args.handlers.split(",") if args.handlers else stages()
    for name in PROJECTIONS:
        app.projection_runner(name).start()
    snapshots = start_snapshot_writers(app)
    url = app.server.url if app.server else str(app.settings.nats.url)
    heavy = [] if args.inline else [n for n in names if n in HEAVY_STAGES]
    if "selfplay" in heavy:
        heavy += ["selfplay"] * (args.selfplay_workers - 1)
    children = Children(heavy, child_arguments(args, url))
    inline = [name for name in names if name not in heavy]
    producer = Producer.current("up")
    await app.store.append(DaemonStarted(daemon="up", producer=producer))
    print(
        f"ringloop up: NATS {url}, state {app.settings.state_dir}, configs "
        f"{', '.join(app.settings.loop.configs)}; handlers {', '.join(names)}; Ctrl-C stops cleanly",
        file=sys.stderr,
    )
    watcher = asyncio.create_task(watch(app, stop, args.generations, args.progress_every))
    children.start()
    supervisor = asyncio.create_task(children.supervise())
    try:
        await run_stages(app, inline, stop)
    finally:
        watcher.cancel()
        supervisor.cancel()
        await children.stop()
        await snapshots.stop()  # a last snapshot of each view, for handler processes
    await app.store.append(DaemonStopped(daemon="up", producer=producer))
    return 0


def start_snapshot_writers(app: App) -> SnapshotWriters:
    """The projector publishes snapshots of every view it owns (none when disabled)."""
    every = app.settings.snapshots
    return SnapshotWriters(
        SnapshotWriter(app.runners[name], app.settings.projections_db,
                       every_events=every.every_events, every_s=every.every_s)
        for name in PROJECTIONS if every.enabled
    )  # fmt: skip


async def watch(app: App, stop: asyncio.Event, generations: int | None, every: float) -> None:
    """Print progress; set `stop` once `generations` promotion decisions were made."""
    progress = Progress()
    progress.decisions(progress.snapshot(app))
    printed_at = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        rows = progress.snapshot(app)
        if every > 0 and loop.time() - printed_at >= every:
            print(progress.render(rows), file=sys.stderr, flush=True)
            printed_at = loop.time()
        if generations is not None and progress.decisions(rows) >= generations:
            print(
                f"ringloop up: {generations} promotion decision(s) made; stopping", file=sys.stderr
            )
            stop.set()
            return
        await asyncio.sleep(0.5)
