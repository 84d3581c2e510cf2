"""`ringloop tail SUBJECT`: print events on a subject filter readably, live."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from events import Event, EventDecodeError, decode
from events.streams import stream_for_subject
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app, stop_on_signals
from projections.eventstore import RawRecord

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
    start.add_argument("--from-seq", type=int, help="start at this stream sequence")
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


def run(args: argparse.Namespace) -> int:
    stream = stream_for_subject(args.subject)

    async def body(app: App) -> int:
        stop = asyncio.Event()
        stop_on_signals(stop)
        if args.all:
            start = 1
        elif args.from_seq:
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
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # the reader's error (e.g. no such stream) is the command's
        task.cancel()
        return 0

    return run_with_app(args, body, setup=False)  # read-only: never changes a stream
