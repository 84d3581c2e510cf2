"""`ringloop tail SUBJECT`: print events on a subject filter readably, live."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from events import Event, EventDecodeError, decode
from events.streams import stream_for_subject
from ops.app import App
from ops.commands._common import (
    add_bus_arguments,
    run_with_app,
    stop_on_signals,
    stream_sequence,
)
from projections.eventstore import RawRecord

WAITING_NOTE_S = 10.0  # say "waiting" after this long with nothing new (and again as long)
SERVER_GONE_S = 5.0  # disconnected this long: the server went away, stop

ENVELOPE = {
    "type",
    "version",
    "event_id",
    "occurred_at",
    "causation_id",
    "correlation_id",
    "producer",
    "config",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("tail", help="print events on a subject filter, live")
    parser.add_argument("subject", help="subject filter, e.g. 'loop.elo.>' or 'games.>'")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--all", action="store_true", help="start at the first stored event")
    start.add_argument(
        "--from-seq", type=stream_sequence(1), help="start at this stream sequence (1 or more)"
    )
    parser.add_argument("--count", type=int, help="exit after printing N events")
    parser.add_argument("--json", action="store_true", help="print raw event JSON lines")
    add_bus_arguments(parser)
    parser.set_defaults(func=run)


def describe(record: RawRecord) -> str:
    """One readable line: sequence, time, subject, type and the payload fields."""
    try:
        event = decode(record.data)
    except EventDecodeError as exc:
        return f"{record.seq:>8} {record.time:%H:%M:%S} {record.subject}  MALFORMED {exc}"
    return (
        f"{record.seq:>8} {record.time:%H:%M:%S} {record.subject}  {event.type}  {summary(event)}"
    )


def summary(event: Event) -> str:
    fields = event.model_dump(mode="json", exclude=ENVELOPE)
    text = " ".join(
        f"{key}={_short(value)}" for key, value in fields.items() if value not in (None, [], {})
    )
    return text if len(text) <= 240 else text[:239] + "…"


def _short(value: object) -> str:
    text = (
        json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
    )
    return text if len(text) <= 80 else text[:79] + "…"


async def _watch(
    app: App,
    task: asyncio.Task[None],
    waiter: asyncio.Task[bool],
    printed: Callable[[], int],
    subject: str,
) -> int:
    """Until the follower ends or Ctrl-C: say when nothing comes, stop when the server is gone."""
    loop = asyncio.get_running_loop()
    seen, quiet_since, gone_since = printed(), loop.time(), None
    while not (task.done() or waiter.done()):
        await asyncio.wait([task, waiter], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        now = loop.time()
        if printed() != seen:
            seen, quiet_since = printed(), now
        elif now - quiet_since >= WAITING_NOTE_S:
            print(f"ringloop tail: waiting for events on {subject!r} "
                  f"(none for {now - quiet_since:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
            quiet_since = now
        if app.nc.is_connected:
            gone_since = None
        elif gone_since is None:
            gone_since = now
        elif now - gone_since >= SERVER_GONE_S:
            print(f"ringloop tail: the NATS server went away ({app.nc.connected_url or 'disconnected'}"
                  f" for {SERVER_GONE_S:.0f} s); stopping", file=sys.stderr, flush=True)  # fmt: skip
            return 1
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    return 0


def run(args: argparse.Namespace) -> int:
    stream = stream_for_subject(args.subject)

    async def body(app: App) -> int:
        stop = asyncio.Event()
        stop_on_signals(stop)
        if args.all:
            start = 1
        elif args.from_seq is not None:
            start = args.from_seq
        else:
            start = await app.store.last_seq(stream) + 1
        printed = 0

        async def follow() -> None:
            nonlocal printed
            async for chunk in app.store.read_raw(
                stream, args.subject, start_seq=start, follow=True
            ):
                for record in chunk:
                    print(record.data.decode() if args.json else describe(record), flush=True)
                    printed += 1
                    if args.count is not None and printed >= args.count:
                        return

        task = asyncio.create_task(follow())
        waiter = asyncio.create_task(stop.wait())
        url = app.server.url if app.server else app.settings.nats.url or "the state folder's server"
        # said once the start is fixed: an event appended after this line is printed
        print(f"ringloop tail: following {args.subject!r} on {stream} live from seq {start} "
              f"({url}); Ctrl-C stops", file=sys.stderr, flush=True)  # fmt: skip
        code = await _watch(app, task, waiter, lambda: printed, args.subject)
        task.cancel()
        waiter.cancel()
        return code

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream
