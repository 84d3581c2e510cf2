"""Reads the bus's own state for the dashboard and the metrics: consumer lag and held leases.

The read models answer everything about the loop's events; what only the server knows —
how far each durable consumer is behind, which leases the KV bucket holds now — is read
here, on a cadence, by `BusMonitor`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats.errors
import structlog
from nats.js.client import JetStreamContext
from nats.js.errors import NoKeysError, NotFoundError

from events.streams import LEASES_BUCKET, STREAM_SUBJECTS
from handlers.coordinator import LeaseClient
from projections.eventstore import EventStore

log = structlog.get_logger(__name__)

EPHEMERAL_PREFIXES = ("OC_", "ordered")  # ordered consumers of readers, not handler consumers


async def consumer_lags(js: JetStreamContext) -> list[dict[str, Any]]:
    """Every durable consumer of ringloop's streams: messages pending, unacknowledged, redelivered."""
    rows = []
    for stream in STREAM_SUBJECTS:
        try:
            consumers = await js.consumers_info(stream)
        except NotFoundError:
            continue
        for info in consumers:
            if str(info.name).startswith(EPHEMERAL_PREFIXES) or not info.config.durable_name:
                continue
            rows.append({
                "stream": stream, "consumer": info.name, "lag": int(info.num_pending or 0),
                "ack_pending": int(info.num_ack_pending or 0),
                "redelivered": int(info.num_redelivered or 0),
                "delivered_seq": info.delivered.stream_seq if info.delivered else 0,
            })  # fmt: skip
    return sorted(rows, key=lambda row: (row["stream"], row["consumer"]))


async def held_leases(store: EventStore, now: datetime | None = None) -> list[dict[str, Any]]:
    """The leases the KV bucket holds now, with their holder and how long it has held them."""
    now = now or datetime.now(UTC)
    leases = LeaseClient(store)
    try:
        keys = await (await store.js.key_value(LEASES_BUCKET)).keys()
    except (NotFoundError, NoKeysError):
        return []
    rows = []
    for key in keys:
        revision, holder = await leases.read(key)
        if holder is None:
            continue  # released or expired since listed
        since = _parse_time(holder.since)
        rows.append({
            "key": key, "kind": _kind(key), "host": holder.host, "pid": holder.pid,
            "task_id": holder.task_id, "since": holder.since, "revision": revision,
            "held_s": round((now - since).total_seconds(), 3) if since else None,
        })  # fmt: skip
    return sorted(rows, key=lambda row: row["key"])


def _kind(key: str) -> str:
    """`task.<type>...` leases by task type; the others (the loop lease) by their first part."""
    parts = key.split(".")
    return parts[1] if parts[0] == "task" and len(parts) > 1 else parts[0]


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


@dataclass
class BusSample:
    consumers: list[dict[str, Any]] = field(default_factory=list)
    leases: list[dict[str, Any]] = field(default_factory=list)
    at: str | None = None
    version: int = 0  # bumped whenever a read differs from the one before


class BusMonitor:
    """Reads consumer lag and leases every `every_s`; `sample` is the latest read."""

    def __init__(self, store: EventStore, every_s: float) -> None:
        self.store = store
        self.every_s = every_s
        self.sample = BusSample()
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> BusSample:
        consumers, leases = await consumer_lags(self.store.js), await held_leases(self.store)
        sample = self.sample
        changed = (consumers, [_stable(r) for r in leases]) != (
            sample.consumers, [_stable(r) for r in sample.leases]
        )  # fmt: skip
        self.sample = BusSample(consumers, leases, datetime.now(UTC).isoformat(),
                                sample.version + int(changed))  # fmt: skip
        return self.sample

    def start(self) -> BusMonitor:
        self._task = asyncio.create_task(self._run(), name="bus-monitor")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.read()
            except (TimeoutError, nats.errors.Error) as exc:  # a lost node: try again later
                log.warning("bus_monitor_read_failed", error=repr(exc))
            await asyncio.sleep(self.every_s)


def _stable(lease: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in lease.items() if k != "held_s"}
