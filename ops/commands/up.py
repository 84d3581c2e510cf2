"""`ringloop up`: the whole loop — embedded server (unless --nats), projections, every handler."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from events import DaemonStarted, DaemonStopped, Producer
from handlers.coordinator import KeptLease, LoopAlreadyRunning, acquire_loop_lease
from ops import auth
from ops.app import App
from ops.children import Children, child_arguments
from ops.commands._common import (
    add_bus_arguments,
    add_profile_argument,
    run_with_app,
    stop_on_signals,
    with_profile,
)
from ops.progress import Frames, Progress
from ops.projector import PROJECTOR, Projector
from ops.server import ServerError
from ops.settings import Settings
from ops.wiring import PROJECTIONS

HEAVY_STAGES = auth.HEAVY_STAGES
SERVER_WATCH_S = 0.5  # how often `up` checks that its embedded nats-server still runs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("up", help="run the whole loop (embedded NATS by default)")
    parser.add_argument("--generations", type=int, help="stop after N promotion decisions")
    parser.add_argument(
        "--handlers",
        help="comma-separated subset of handlers to run (stages and `projector`; without "
        "`projector` the read models are kept in memory and `ringloop run projector` "
        "writes the state folder's)",
    )
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
    # Every stage's module (torch among them) is imported here (chosen_handlers lists the
    # stages), before the loop lease is taken: an import of many seconds inside the event
    # loop would starve its renewals.
    try:
        names = chosen_handlers(args.handlers)
    except ValueError as exc:
        print(f"ringloop up: {exc}", file=sys.stderr)
        return 2

    async def body(app: App) -> int:
        if args.inline and auth.enabled(app.settings.state_dir):
            print(
                "ringloop: --inline cannot run under least privilege (the loop's credential may "
                f"not publish what {', '.join(HEAVY_STAGES)} emit); drop --inline",
                file=sys.stderr,
            )
            return 2
        projector = Projector(app) if PROJECTOR in names else None
        busy = projector.claim() if projector is not None else None
        if busy is not None:
            print(f"ringloop: {busy}", file=sys.stderr)
            return 3
        try:
            lease = await acquire_loop_lease(app.store, app.settings.loop)
        except LoopAlreadyRunning as exc:
            if projector is not None:
                projector.release()
            print(f"ringloop: {exc}", file=sys.stderr)
            return 3
        try:
            stages = [name for name in names if name != PROJECTOR]
            return await serve(app, args, lease, stages, projector)
        finally:
            await lease.release()
            if projector is not None:
                projector.release()

    return run_with_app(
        args,
        body,
        adjust=lambda s: with_profile(s, args.profile),
        prepare=end_left_behind,
        role=auth.LOOP_ROLE,
    )


def end_left_behind(settings: Settings) -> None:
    """End the server and children a killed `up` of this state folder left running."""
    from ops.processes import end_orphans

    for description in end_orphans(settings.state_dir):
        print(f"ringloop up: ended {description} left by an earlier `up`", file=sys.stderr)


def chosen_handlers(handlers: str | None) -> list[str]:
    """The stages (and the projector) `up` runs: all by default, else the named ones."""
    from ops.wiring import stages

    known = [*stages(), PROJECTOR]
    if handlers is None:
        return known
    names = [name.strip() for name in handlers.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(
            f"--handlers {handlers!r}: unknown handler(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


async def serve(
    app: App,
    args: argparse.Namespace,
    lease: KeptLease,
    names: list[str],
    projector: Projector | None,
) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    from ops.watching import announce, start_watching
    from ops.wiring import run_stages

    # Without the projector (another process writes projections.db) every view is in memory.
    views_db = None if projector is not None else ":memory:"
    if projector is not None:
        projector.start()
    else:
        app.start_views(list(PROJECTIONS), views_db)
    watching = await start_watching(app, dashboard=True, loop_metrics=True, handler_metrics=True,
                                    metrics_port=app.settings.metrics.up_port)  # fmt: skip
    url = app.url
    heavy = [] if args.inline else [n for n in names if n in HEAVY_STAGES]
    if "selfplay" in heavy:
        heavy += ["selfplay"] * (args.selfplay_workers - 1)
    children = Children(heavy, child_arguments(args, url), state_dir=app.settings.state_dir)
    from ops.inference import start_for_loop

    inference = (
        start_for_loop(app.settings, child_arguments(args, url)) if "selfplay" in names else None
    )
    inline = [name for name in names if name not in heavy]
    producer = Producer.current("up")
    await app.store.append(DaemonStarted(daemon="up", producer=producer))
    print(
        f"ringloop up: NATS {url}, state {app.settings.state_dir}, configs "
        f"{', '.join(app.settings.loop.configs)}; handlers {', '.join(names)}; Ctrl-C stops cleanly",
        file=sys.stderr,
    )
    announce("up", watching)
    watcher = asyncio.create_task(
        watch(app, stop, args.generations, args.progress_every, args.profile)
    )
    fence = asyncio.create_task(stop_when_lost(lease, stop))
    keeper = asyncio.create_task(keep_server(app, stop)) if app.server else None
    children.start()
    supervisor = asyncio.create_task(children.supervise())
    try:
        await run_stages(app, inline, stop, views_db=views_db)
    finally:
        for task in (watcher, fence, keeper, supervisor):
            if task is not None:
                task.cancel()
        await children.stop()
        if inference is not None:
            await inference.stop()  # after selfplay, its clients
        await watching.stop()
        if projector is not None:
            await projector.stop()  # a last snapshot of each view, for handler processes
    await app.store.append(DaemonStopped(daemon="up", producer=producer))
    print(stopped_summary(app, inline, heavy, url), file=sys.stderr, flush=True)
    return 0


def stopped_summary(app: App, inline: list[str], heavy: list[str], url: str) -> str:
    """What a stop ended: the stages, the child processes, the projections' positions, NATS."""
    children = ", ".join(f"{n}×{heavy.count(n)}" if heavy.count(n) > 1 else n
                         for n in dict.fromkeys(heavy)) or "none"  # fmt: skip
    positions = ", ".join(f"{n} {r.position}" for n, r in app.runners.items())
    server = f"embedded NATS {url} (stopping now)" if app.server else f"NATS {url} left running"
    return (f"ringloop up: stopped in-process stages {', '.join(inline) or 'none'}; child "
            f"processes {children}; projections drained at seq ({positions}); {server}; a rerun "
            "resumes from here")  # fmt: skip


async def stop_when_lost(lease: KeptLease, stop: asyncio.Event) -> None:
    """Fencing: once the loop lease is lost (another `up` took it over, or it expired
    unrenewed and may be taken), this one stops."""
    await lease.lost.wait()
    print(f"ringloop up: {lease.lost_reason}; stopping", file=sys.stderr)
    stop.set()


async def keep_server(app: App, stop: asyncio.Event) -> None:
    """Restart the embedded nats-server (same port and store) whenever it dies; the
    connections of this process and its children reconnect on their own."""
    from ops.app import restart_embedded

    server = app.server
    assert server is not None
    while not stop.is_set():
        code = server.exited()
        if code is not None:
            print(
                f"ringloop up: the embedded nats-server exited ({code}); restarting it on "
                f"{server.url}",
                file=sys.stderr,
                flush=True,
            )
            try:
                seconds = await restart_embedded(app.settings, server)
            except ServerError as exc:
                print(f"ringloop up: restarting nats-server failed: {exc}", file=sys.stderr)
            else:
                print(f"ringloop up: nats-server back after {seconds:.1f}s", file=sys.stderr)
        await asyncio.sleep(SERVER_WATCH_S)


async def watch(
    app: App, stop: asyncio.Event, generations: int | None, every: float, profile: str | None
) -> None:
    """Print progress; set `stop` once `generations` promotion decisions were made."""
    progress = Progress(profile=profile)
    frames = Frames(sys.stderr)
    progress.decisions(progress.snapshot(app))
    printed_at = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        rows = progress.snapshot(app)
        if every > 0 and loop.time() - printed_at >= every:
            frames.show(progress.render(rows))
            printed_at = loop.time()
        if generations is not None and progress.decisions(rows) >= generations:
            print(
                f"ringloop up: {generations} promotion decision(s) made; stopping", file=sys.stderr
            )
            stop.set()
            return
        await asyncio.sleep(0.5)
