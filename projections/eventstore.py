"""The event store on JetStream: append (deduped, optionally conditional), read ranges, follow.

It lives beside the projections because both the projection runner and the handler runtime
build on it (handlers may import projections; projections may not import handlers).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, ObjectInfo, ObjectMeta, ObjectMetaOptions
from nats.js.errors import APIError, DigestMismatchError, NotFoundError

from events import Event, decode, decode_on, encode
from events.streams import stream_for_subject
from projections.transient import CALL_DEADLINE_S, retry_transient

WRONG_LAST_SEQUENCE = 10071
BATCH_DUPLICATE_ID = 10201
MAX_BATCH = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OBJECT_CHUNK = 512 * 1024  # Object Store chunk: under the server's 1 MB max_payload
READ_HEARTBEAT_S = 1.0  # an ordered read that hears nothing for 2-4 beats resumes (nats-py)
READ_STALL_S = 15.0  # a read short of its end that hears nothing this long resumes itself

log = structlog.get_logger(__name__)


class ReadStalled(TimeoutError):
    """A read short of its end heard nothing, through new consumers, for CALL_DEADLINE_S."""


class ConcurrencyConflict(RuntimeError):
    """An append expected a last sequence on a subject filter that has moved on."""

    def __init__(self, subject_filter: str, expected: int, detail: str) -> None:
        super().__init__(
            f"optimistic concurrency conflict on {subject_filter!r}: expected last sequence "
            f"{expected}, server says {detail!r}; re-read and retry the decision"
        )
        self.subject_filter = subject_filter
        self.expected = expected


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One stored message before decoding: the bytes and where they sit in the stream."""

    stream: str
    seq: int
    subject: str
    timestamp_ns: int
    data: bytes
    pending: int

    @property
    def time(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.timestamp_ns // 1000)  # exact, truncated


@dataclass(frozen=True, slots=True)
class StoredEvent:
    stream: str
    seq: int
    subject: str
    time: datetime
    event: Event


def parse_ack_reply(reply: str) -> tuple[int, int, int]:
    """(stream_seq, timestamp_ns, pending) from a JetStream ack subject, v1 or v2 form."""
    tokens = reply.split(".")
    if len(tokens) == 9:  # $JS.ACK.stream.consumer.delivered.sseq.cseq.ts.pending
        return int(tokens[5]), int(tokens[7]), int(tokens[8])
    # $JS.ACK.domain.account.stream.consumer.delivered.sseq.cseq.ts.pending[.token]
    return int(tokens[7]), int(tokens[9]), int(tokens[10])


class EventStore:
    """Append to and read from ringloop's streams. All event I/O goes through here."""

    def __init__(self, nc: Client, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.timeout = timeout

    # ------------------------------------------------------------ append

    async def append(
        self,
        event: Event,
        *,
        expected_last_seq: int | None = None,
        expected_filter: str | None = None,
    ) -> int:
        """Append one event; returns its stream sequence (the original one for a duplicate).

        With `expected_last_seq`, the append only succeeds if the last message on
        `expected_filter` (default: the event's own subject; wildcards allowed) has that
        sequence (0 = none yet); otherwise ConcurrencyConflict.
        """
        subject = event.subject()
        headers = {"Nats-Msg-Id": event.event_id}
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = expected_filter or subject
        data = encode(event)
        try:
            ack = await retry_transient(
                lambda: self.js.publish(subject, data, headers=headers),
                what=f"appending to {subject}",
                deadline_s=CALL_DEADLINE_S,
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(
                    expected_filter or subject, expected_last_seq or 0, str(exc.description)
                ) from None
            raise
        return int(ack.seq)

    async def append_many(self, events: Sequence[Event]) -> list[int]:
        """Append unconditionally, pipelined (publish_async), each deduplicated by event id;
        a transient failure republishes them all (the ids drop the copies)."""
        return await retry_transient(
            lambda: self._append_many(events),
            what=f"appending {len(events)} events",
            deadline_s=CALL_DEADLINE_S,
        )

    async def _append_many(self, events: Sequence[Event]) -> list[int]:
        futures = []
        for event in events:
            futures.append(
                await self.js.publish_async(
                    event.subject(), encode(event), headers={"Nats-Msg-Id": event.event_id}
                )
            )
        acks = await asyncio.wait_for(asyncio.gather(*futures), self.timeout + len(events) / 1000)
        return [int(ack.seq) for ack in acks]

    async def append_atomic(
        self,
        events: Sequence[Event],
        *,
        expected_last_seq: int | None = None,
        expected_filter: str | None = None,
    ) -> int | None:
        """Append all events or none (an atomic batch), optionally conditional on the filter.

        Returns the sequence of the last event, or None when the batch had already been
        appended (its ids are in the duplicate window: a redelivered decision).
        """
        if not events:
            return None
        if len(events) > MAX_BATCH:
            raise ValueError(f"atomic batch of {len(events)} events exceeds {MAX_BATCH}")
        if len(events) == 1:
            return await self._append_single_or_dup(events[0], expected_last_seq, expected_filter)
        return await retry_transient(
            lambda: self._append_batch(events, expected_last_seq, expected_filter),
            what=f"appending a batch of {len(events)} events",
            deadline_s=CALL_DEADLINE_S,
        )

    async def _append_batch(
        self,
        events: Sequence[Event],
        expected_last_seq: int | None,
        expected_filter: str | None,
    ) -> int | None:
        batch_id = uuid.uuid4().hex
        for index, event in enumerate(events, 1):
            headers = {
                "Nats-Msg-Id": event.event_id,
                "Nats-Batch-Id": batch_id,
                "Nats-Batch-Sequence": str(index),
            }
            if index == 1 and expected_last_seq is not None:
                headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
                headers["Nats-Expected-Last-Subject-Sequence-Subject"] = (
                    expected_filter or event.subject()
                )
            if index < len(events):
                await self.nc.publish(event.subject(), encode(event), headers=headers)
                continue
            headers["Nats-Batch-Commit"] = "1"
            reply = await self.nc.request(
                event.subject(), encode(event), headers=headers, timeout=self.timeout
            )
            return self._batch_result(reply, expected_last_seq, expected_filter or "")
        return None  # pragma: no cover - loop always returns

    async def _append_single_or_dup(
        self, event: Event, expected: int | None, subject_filter: str | None
    ) -> int:
        return await self.append(event, expected_last_seq=expected, expected_filter=subject_filter)

    @staticmethod
    def _batch_result(reply: Msg, expected: int | None, subject_filter: str) -> int | None:
        response = json.loads(reply.data)
        error = response.get("error")
        if error is None:
            return int(response["seq"])
        if error.get("err_code") == BATCH_DUPLICATE_ID:
            return None
        if error.get("err_code") == WRONG_LAST_SEQUENCE:
            raise ConcurrencyConflict(subject_filter, expected or 0, error.get("description", ""))
        raise APIError(**error)

    # ------------------------------------------------------------ read

    async def last_seq(self, stream: str, subject_filter: str = ">") -> int:
        """The sequence of the newest message on `subject_filter` (0 when there is none)."""
        return await retry_transient(
            lambda: self._last_seq(stream, subject_filter),
            what=f"reading the end of {stream}",
            deadline_s=CALL_DEADLINE_S,
        )

    async def _last_seq(self, stream: str, subject_filter: str) -> int:
        if subject_filter == ">":
            info = await self.js.stream_info(stream)
            return int(info.state.last_seq) if info.state.messages else 0
        try:
            msg = await self.js.get_last_msg(stream, subject_filter)
        except NotFoundError:
            return 0
        return int(msg.seq or 0)

    async def junk_after(self, subject_filter: str, after_seq: int) -> int | None:
        """The last sequence on `subject_filter` if every message after `after_seq` on it is
        junk (undecodable there, so no view folds it); None if any is a real event."""
        stream = stream_for_subject(subject_filter.replace("*", "x").replace(">", "x"))
        last = after_seq
        async for chunk in self.read_raw(stream, subject_filter, start_seq=after_seq + 1):
            for record in chunk:
                try:
                    decode_on(record.subject, record.data)
                except ValueError:
                    last = record.seq
                    continue
                return None
        return last if last > after_seq else None

    async def get(self, stream: str, seq: int) -> RawRecord:
        msg = await self.js.get_msg(stream, seq)
        stamp = 0
        if msg.time is not None:
            stamp = int(datetime.fromisoformat(str(msg.time)).timestamp() * 1e9)
        return RawRecord(stream, int(msg.seq or seq), msg.subject or "", stamp, msg.data or b"", 0)

    async def read_raw(
        self,
        stream: str,
        subject_filter: str = ">",
        *,
        start_seq: int = 1,
        end_seq: int | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        follow: bool = False,
        stall_s: float = READ_STALL_S,
    ) -> AsyncIterator[list[RawRecord]]:
        """Yield chunks of stored messages in order (an ordered push consumer, ~90k msg/s).

        Stops at `end_seq` / `end_time`, or, unless `follow`, at the end of the stream as it
        was when reading started. With `follow`, keeps waiting for new messages. A read that is
        not following and hears nothing for `stall_s` resumes after its last message with a
        new consumer; ReadStalled once nothing came for CALL_DEADLINE_S.
        """
        stop_seq = end_seq
        if not follow:
            last = await self.last_seq(stream, subject_filter)
            stop_seq = last if end_seq is None else min(end_seq, last)
            if stop_seq < start_seq:
                return
        end_ns = _ns_ceiling(end_time) if end_time is not None else None
        config = _start_config(start_seq, start_time)
        stalled_since: float | None = None
        while True:
            reader = _ChunkReader()
            sub = await retry_transient(
                functools.partial(
                    self.js.subscribe,
                    subject_filter,
                    stream=stream,
                    ordered_consumer=True,
                    config=config,
                    cb=reader.on_message,
                    pending_msgs_limit=2_000_000,
                    pending_bytes_limit=1 << 30,
                ),
                what=f"reading {stream}",
                deadline_s=CALL_DEADLINE_S,
            )
            try:
                while True:
                    if follow:
                        chunk = await reader.next_chunk(stream)
                    else:  # more must come: silence means the consumer is gone
                        try:
                            chunk = await asyncio.wait_for(reader.next_chunk(stream), stall_s)
                        except TimeoutError:
                            break
                    stalled_since = None
                    kept = [r for r in chunk if _before(r, stop_seq, end_ns)]
                    if kept:
                        yield kept
                        config = _start_config(kept[-1].seq + 1, None)
                    if len(kept) < len(chunk) or (
                        stop_seq is not None and chunk[-1].seq >= stop_seq
                    ):
                        return
            finally:
                await sub.unsubscribe()
            # nats-py does not always recreate a lost ordered consumer (nats.py#510): a read
            # that hears nothing before its end starts again after the last message it yielded
            now = time.monotonic()
            stalled_since = stalled_since or now - stall_s
            if now - stalled_since > CALL_DEADLINE_S:
                raise ReadStalled(
                    f"reading {stream} ({subject_filter}) heard nothing for "
                    f"{now - stalled_since:.0f}s before sequence {stop_seq}"
                )
            log.warning(
                "read_resumed",
                message=f"reading {stream} ({subject_filter}) heard nothing for {stall_s:g}s "
                f"before sequence {stop_seq}; resuming with a new consumer",
            )

    # ------------------------------------------------------------ objects

    async def get_object(self, bucket: str, name: str) -> tuple[ObjectInfo, bytes]:
        """An object's info and bytes, its sha256 digest checked.

        The chunks are read by direct get, one request each: nats-py's own get (an ordered
        consumer) reads ~40 MB/s here, direct gets ~200 MB/s. A link, or a stream without
        direct get, goes through nats-py's get into a buffer (without `writeinto` it grows
        `result.data` chunk by chunk, which is quadratic in the object's size).
        """
        store = await self.js.object_store(bucket)
        info = await store.get_info(name)
        stream = f"OBJ_{bucket}"
        if info.is_link() or not (await self.js.stream_info(stream)).config.allow_direct:
            buffer = io.BytesIO()
            result = await store.get(name, writeinto=buffer)  # type: ignore[arg-type]
            return result.info, buffer.getvalue()
        subject, digest, seq = f"$O.{bucket}.C.{info.nuid}", hashlib.sha256(), 1
        parts: list[bytes] = []
        while len(parts) < (info.chunks or 0):
            msg = await self.js.get_msg(stream, seq=seq, subject=subject, direct=True, next=True)
            parts.append(msg.data or b"")
            digest.update(parts[-1])
            seq = int(msg.seq or seq) + 1
        expected = (info.digest or "").partition("=")[2]
        if base64.urlsafe_b64decode(expected) != digest.digest():
            raise DigestMismatchError(description=f"object {bucket}/{name} fails its digest")
        return info, b"".join(parts)

    async def put_object(
        self, bucket: str, name: str, data: bytes, *, description: str | None = None
    ) -> ObjectInfo:
        """Store bytes under `name` (replacing the previous version; its chunks are purged)."""
        store = await self.js.object_store(bucket)
        options = ObjectMetaOptions(max_chunk_size=OBJECT_CHUNK)
        meta = ObjectMeta(name=name, description=description, options=options)
        return await store.put(name, data, meta=meta)

    async def object_info(self, bucket: str, name: str) -> ObjectInfo | None:
        """An object's info without its bytes (None when there is no such object)."""
        store = await self.js.object_store(bucket)
        try:
            return await store.get_info(name)
        except NotFoundError:
            return None

    async def read(
        self, stream: str, subject_filter: str = ">", **kwargs: object
    ) -> AsyncIterator[StoredEvent]:
        """Decoded events in order; same arguments as read_raw."""
        async for chunk in self.read_raw(stream, subject_filter, **kwargs):  # type: ignore[arg-type]
            for record in chunk:
                yield StoredEvent(
                    record.stream, record.seq, record.subject, record.time, decode(record.data)
                )

    async def read_all(
        self, stream: str, subject_filter: str = ">", **kwargs: object
    ) -> list[StoredEvent]:
        return [stored async for stored in self.read(stream, subject_filter, **kwargs)]


def _ns_ceiling(moment: datetime) -> int:
    """The last nanosecond of `moment`'s microsecond, in exact integer arithmetic.

    Stored times carry nanoseconds, datetimes microseconds: "as of T" includes every
    event of T's microsecond (a float timestamp would drop some).
    """
    micros = (moment.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)
    return micros * 1000 + 999


def _before(record: RawRecord, stop_seq: int | None, end_ns: int | None) -> bool:
    if stop_seq is not None and record.seq > stop_seq:
        return False
    return end_ns is None or record.timestamp_ns <= end_ns


def _start_config(start_seq: int, start_time: datetime | None) -> ConsumerConfig:
    """Where an ordered read starts. Its idle heartbeat is short: when the consumer is lost
    (its server died, an election), nats-py recreates it from the last sequence seen once
    two heartbeats are missed, so a follower resumes within a few seconds — usually: where
    it does not (nats.py#510) a read short of its end resumes itself (read_raw's stall_s)."""
    if start_time is not None:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start_time.astimezone(UTC),
            idle_heartbeat=READ_HEARTBEAT_S,
        )
    if start_seq <= 1:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL, idle_heartbeat=READ_HEARTBEAT_S)
    return ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_seq,
        idle_heartbeat=READ_HEARTBEAT_S,
    )


class _ChunkReader:
    """Collects messages from a subscription callback and hands them out in chunks."""

    def __init__(self) -> None:
        self._buffer: deque[tuple[str, str, bytes]] = deque()
        self._ready = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        self._buffer.append((msg.reply, msg.subject, msg.data))
        self._ready.set()

    async def next_chunk(self, stream: str) -> list[RawRecord]:
        """The messages received since the last call (waiting for at least one)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            chunk = []
            while self._buffer:
                reply, subject, data = self._buffer.popleft()
                seq, stamp, pending = parse_ack_reply(reply)
                chunk.append(RawRecord(stream, seq, subject, stamp, data, pending))
            if chunk:
                return chunk


__all__ = [
    "ConcurrencyConflict",
    "EventStore",
    "RawRecord",
    "StoredEvent",
    "stream_for_subject",
]
