"""What `ringloop status` reports: streams, consumer lag, projection checkpoints, dead letters."""

from __future__ import annotations

from typing import Any

from nats.js.errors import NotFoundError

from events import LOG_STREAM, HandlerFailed
from events.streams import STREAM_SUBJECTS
from ops.app import App
from projections.runner import CHECKPOINTS, open_db


async def collect_status(app: App, *, recent_dead_letters: int = 5) -> dict[str, Any]:
    js = app.store.js
    streams = []
    last_seqs: dict[str, int] = {}
    for name in STREAM_SUBJECTS:
        info = await js.stream_info(name)
        last_seqs[name] = int(info.state.last_seq)
        consumers = []
        for consumer in await js.consumers_info(name):
            consumers.append(
                {
                    "name": consumer.name,
                    "lag": consumer.num_pending,
                    "ack_pending": consumer.num_ack_pending,
                    "redelivered": consumer.num_redelivered,
                    "delivered_seq": consumer.delivered.stream_seq if consumer.delivered else 0,
                }
            )
        streams.append(
            {
                "stream": name,
                "messages": info.state.messages,
                "bytes": info.state.bytes,
                "first_seq": info.state.first_seq,
                "last_seq": info.state.last_seq,
                "consumers": [
                    c for c in consumers if not str(c["name"]).startswith(("OC_", "ordered"))
                ],
            }
        )
    db = open_db(app.settings.projections_db)
    projections = [
        {
            "projection": row["projection"],
            "stream": row["stream"],
            "last_seq": row["last_seq"],
            "lag": last_seqs.get(row["stream"], 0) - row["last_seq"],
            "updated_at": row["updated_at"],
        }
        for row in db.query(f"select * from {CHECKPOINTS} order by projection")
    ]
    return {
        "streams": streams,
        "projections": projections,
        "dead_letters": await _dead_letters(app, recent_dead_letters),
    }


async def _dead_letters(app: App, recent: int) -> dict[str, Any]:
    try:
        stored = await app.store.read_all(LOG_STREAM, "loop.dlq.>")
    except NotFoundError:
        stored = []
    items = [s for s in stored if isinstance(s.event, HandlerFailed)]
    return {
        "count": len(items),
        "recent": [
            {
                "seq": s.seq,
                "handler": s.event.handler,  # type: ignore[attr-defined]
                "error_type": s.event.error_type,  # type: ignore[attr-defined]
                "error": s.event.error[:200],  # type: ignore[attr-defined]
                "input": f"{s.event.input_stream}#{s.event.input_seq}",  # type: ignore[attr-defined]
            }
            for s in items[-recent:]
        ],
    }


def render_status(status: dict[str, Any]) -> str:
    lines = ["STREAMS"]
    for stream in status["streams"]:
        lines.append(
            f"  {stream['stream']:<16} {stream['messages']:>9} msgs {stream['bytes']:>12} bytes  "
            f"seq {stream['first_seq']}..{stream['last_seq']}"
        )
        for consumer in stream["consumers"]:
            lines.append(
                f"    consumer {consumer['name']:<20} lag {consumer['lag']:>7}  "
                f"unacked {consumer['ack_pending']:>4}  redelivered {consumer['redelivered']}"
            )
    lines.append("PROJECTIONS")
    for projection in status["projections"] or [
        {"projection": "(none yet)", "last_seq": 0, "lag": 0, "stream": ""}
    ]:
        lines.append(
            f"  {projection['projection']:<16} at seq {projection['last_seq']:>9}  lag {projection['lag']:>7}  {projection['stream']}"
        )
    dead = status["dead_letters"]
    lines.append(f"DEAD LETTERS  {dead['count']}")
    for item in dead["recent"]:
        lines.append(
            f"  #{item['seq']} {item['handler']}: {item['error_type']}: {item['error']} (input {item['input']})"
        )
    return "\n".join(lines)
