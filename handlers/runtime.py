"""The shared handler runtime: durable pull consumers, publishing, heartbeats, ack/nak/term, DLQ.

A handler is a plain function from an event to the events it causes (or an `Append`
naming an optimistic-concurrency condition). The runtime owns all the I/O around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from events import Event, EventDecodeError, HandlerFailed, Producer, decode_on, derive_event_id
from events.streams import LOG_STREAM
from projections.eventstore import ConcurrencyConflict, EventStore
from projections.transient import (
    backoff,
    is_transient,
    report_transient,
    retry_transient,
)

log = structlog.get_logger(__name__)


class TransientError(RuntimeError):
    """A failure worth retrying later (a busy resource, a timeout): the input is nak'ed."""


class Waiting(TransientError):
    """Not a failure: the input must wait for something (a free slot, a lease to end).

    Logged at debug level: a long wait is normal and would otherwise fill the log with
    warnings. By default it is nak'ed with the spec's delay like any transient error, and
    JetStream counts each nak as a delivery; a spec with `wait_in_place` instead keeps the
    message (in_progress heartbeats) and asks again after each delay, spending no delivery.
    """


class Interrupted(RuntimeError):
    """Long work abandoned because the process is stopping: the input is nak'ed at once,
    for another copy (or this one, after a restart) to redo."""


@dataclass(frozen=True)
class Append:
    """Handler output appended atomically, optionally only if `expected_filter` is unchanged."""

    events: Sequence[Event]
    expected_last_seq: int | None = None
    expected_filter: str | None = None


Result = Sequence[Event] | Append | None
Handle = Callable[[Event], Result | Awaitable[Result]]
# A batch handler gets every event of one fetch and returns one outcome per event: its
# result, or the exception that event failed with (settled as if raised for it alone).
Outcome = Result | Exception
HandleBatch = Callable[[list[Event]], Awaitable[list[Outcome]]]


def batched(function: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler as taking the whole fetched batch (a list of events) at once."""
    function.batched = True  # type: ignore[attr-defined]
    return function


def is_batched(function: Callable[..., Any]) -> bool:
    return bool(getattr(function, "batched", False))


@dataclass(frozen=True)
class Consumer:
    """How every reaction of a stage consumes (each reaction has its own durable consumer).

    A stage module may define ``consumer(settings) -> Consumer``; without one it gets these
    defaults. ``per_process``: each process gets its own consumer of new events only (every
    copy must see them: selfplay swapping weights), removed by the server once idle.
    """

    batch: int = 32
    ack_wait: float = 30.0
    max_deliver: int = 5
    nak_delays: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    wait_in_place: bool = False
    per_process: bool = False


# Observers of every settled delivery, called as (handler, outcome, seconds) with outcome
# "acked" or "failed" (nak'ed, dead-lettered or interrupted); ops.metrics registers one.
SETTLED_OBSERVERS: list[Callable[[str, str, float], None]] = []


def _observe(handler: str, outcome: str, started: float) -> None:
    for observer in SETTLED_OBSERVERS:
        observer(handler, outcome, time.monotonic() - started)


PER_PROCESS_IDLE_S = 300.0  # a per-process consumer with no client this long is removed


@dataclass(frozen=True)
class HandlerSpec:
    """How one stage consumes: its durable name, subjects, function and delivery policy."""

    name: str
    subjects: tuple[str, ...]
    handle: Handle
    stream: str = LOG_STREAM
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 256
    batch: int = 1
    blocking: bool = False
    nak_delays: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    refresh: Callable[[], Awaitable[None]] | None = None
    conflict_retries: int = 20
    deliver_new_only: bool = False
    on_stop: Callable[[], None] | None = None
    wait_in_place: bool = False
    handle_batch: HandleBatch | None = None
    per_process: bool = False
    stage: str = ""  # the stage (handlers module) it belongs to; names dead letters and logs

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"handler name {self.name!r} must be alphanumeric with - or _")
        if self.max_deliver < 1 or self.ack_wait <= 0:
            raise ValueError(f"handler {self.name!r}: max_deliver ≥ 1 and ack_wait > 0 required")


class HandlerRuntime:
    """Runs one HandlerSpec against the bus until asked to stop (then drains)."""

    def __init__(self, spec: HandlerSpec, store: EventStore) -> None:
        self.spec = spec
        self.store = store
        self.stage = spec.stage or spec.name
        self.producer = Producer.current(self.stage)
        self.durable = f"{spec.name}-{uuid.uuid4().hex[:8]}" if spec.per_process else spec.name
        self.processed = 0
        self.failed = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop fetching; the message in hand is finished and acknowledged first.

        A handler doing long work can offer `on_stop` (e.g. setting a flag its training
        loop checks) and raise Interrupted: its input is then nak'ed for redelivery.
        """
        self._stopping.set()
        if self.spec.on_stop is not None:
            self.spec.on_stop()

    async def ensure_consumer(self) -> None:
        spec = self.spec
        new_only = spec.deliver_new_only or spec.per_process
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=spec.ack_wait,
            max_deliver=spec.max_deliver,
            max_ack_pending=spec.max_ack_pending,
            deliver_policy=DeliverPolicy.NEW if new_only else DeliverPolicy.ALL,
            filter_subjects=list(spec.subjects),
            inactive_threshold=PER_PROCESS_IDLE_S if spec.per_process else None,
        )
        try:
            await self.store.js.consumer_info(spec.stream, self.durable)
        except NotFoundError:
            await self.store.js.add_consumer(spec.stream, config)

    async def run(self) -> None:
        what = f"handler {self.spec.name}: starting its consumer"
        await retry_transient(self.ensure_consumer, what=what)
        sub = await retry_transient(
            lambda: self.store.js.pull_subscribe_bind(
                durable=self.durable, stream=self.spec.stream
            ),
            what=what,
        )
        log.info("handler_started", handler=self.spec.name, subjects=self.spec.subjects)
        outage = 0  # fetches in a row that failed transiently (a lost node, an election)
        try:
            while not self._stopping.is_set():
                try:
                    messages = await sub.fetch(self.spec.batch, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    outage = 0
                    continue  # nats-py 2.16 raises either when no message arrives
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    outage += 1
                    delay = backoff(outage)
                    report_transient(f"handler {self.spec.name}: fetching", exc, outage, delay)
                    await self._stopped_within(delay)
                    continue
                outage = 0
                if self.spec.handle_batch is not None and len(messages) > 1:
                    await self.process_batch(messages)
                    continue
                for msg in messages:
                    await self.process(msg)
        finally:
            await sub.unsubscribe()
            log.info("handler_stopped", handler=self.spec.name, processed=self.processed)

    # ------------------------------------------------------------ one message

    async def process(self, msg: Msg) -> None:
        """Handle one delivery; it always ends in exactly one of ack, nak or term."""
        settled = False
        over = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(msg, over))
        started = time.monotonic()
        try:
            event = decode_on(msg.subject, msg.data)
            await self._handle_waiting(event)
            await self._ack(msg)
            settled = True
            self.processed += 1
            _observe(self.spec.name, "acked", started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._settle_failure(msg, exc)
            settled = True
            _observe(self.spec.name, "failed", started)
        finally:
            over.set()
            heartbeat.cancel()
            if not settled:
                await _quietly(msg.nak())

    async def process_batch(self, messages: list[Msg]) -> None:
        """Handle one fetch with the spec's batch handler; each message is settled on its own
        outcome (ack after its events are appended, or its error's nak / term)."""
        assert self.spec.handle_batch is not None
        over = asyncio.Event()
        beats = [asyncio.create_task(self._heartbeat(msg, over)) for msg in messages]
        settled: set[int] = set()
        started = time.monotonic()
        try:
            decoded: list[tuple[Msg, Event]] = []
            for msg in messages:
                try:
                    decoded.append((msg, decode_on(msg.subject, msg.data)))
                except EventDecodeError as exc:
                    await self._settle_failure(msg, exc)
                    settled.add(id(msg))
            if not decoded:
                return
            try:
                if self.spec.refresh is not None:
                    await self.spec.refresh()
                outcomes = await self.spec.handle_batch([event for _, event in decoded])
            except Exception as exc:  # the batch as a whole failed: every message shares it
                outcomes = [exc] * len(decoded)
            for (msg, _), outcome in zip(decoded, outcomes, strict=True):
                try:
                    if isinstance(outcome, Exception):
                        raise outcome
                    await self._append(outcome)
                    await self._ack(msg)
                    self.processed += 1
                    _observe(self.spec.name, "acked", started)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._settle_failure(msg, exc)
                    _observe(self.spec.name, "failed", started)
                settled.add(id(msg))
        finally:
            over.set()
            for beat in beats:
                beat.cancel()
            for msg in messages:
                if id(msg) not in settled:
                    await _quietly(msg.nak())

    async def _ack(self, msg: Msg) -> None:
        """Acknowledge and wait for the server's confirmation. An unconfirmed ack (the bus
        went away) is not retried: a server that restarted never answers an ack of a
        delivery it no longer tracks. If it was lost, the input is redelivered and its
        outputs, carrying the same ids, are dropped as duplicates or decided as done."""
        try:
            await msg.ack_sync()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "handler_ack_unconfirmed",
                handler=self.spec.name,
                seq=msg.metadata.sequence.stream,
                message=f"ack unconfirmed ({type(exc).__name__}); a redelivery is harmless",
            )

    async def _settle_failure(self, msg: Msg, exc: Exception) -> None:
        """Settle, never failing the runtime: a bus that is away leaves the message to be
        redelivered after ack_wait (see _settle)."""
        try:
            await self._settle(msg, exc)
        except Exception as failure:
            if not is_transient(failure):
                raise
            log.warning(
                "handler_settle_deferred",
                handler=self.spec.name,
                seq=msg.metadata.sequence.stream,
                message=f"bus unavailable while settling ({failure!r}); it will be redelivered",
            )

    async def _settle(self, msg: Msg, exc: Exception) -> None:
        """The acknowledgement an error earns: poison is dead-lettered, an interrupted input
        nak'ed at once, the bus being away retried later without dead-lettering, anything
        else retried with a growing delay, then dead-lettered."""
        deliveries = msg.metadata.num_delivered or 1
        if is_transient(exc):
            delay = backoff(deliveries)
            report_transient(f"handler {self.spec.name}", exc, deliveries, delay)
            await msg.nak(delay=delay)
            return
        if isinstance(exc, EventDecodeError | ValueError):
            await self._dead_letter(msg, exc, deliveries)
            await msg.term()
        elif isinstance(exc, Interrupted):
            await msg.nak()
            log.info(
                "handler_interrupted", handler=self.spec.name, seq=msg.metadata.sequence.stream
            )
        else:
            await self._retry_or_dead_letter(msg, exc, deliveries)

    async def _retry_or_dead_letter(self, msg: Msg, exc: Exception, deliveries: int) -> bool:
        if deliveries >= self.spec.max_deliver:
            await self._dead_letter(msg, exc, deliveries)
            await msg.term()
            return True
        delays = self.spec.nak_delays
        delay = delays[min(deliveries - 1, len(delays) - 1)]
        report = log.debug if isinstance(exc, Waiting) else log.warning
        report(
            "handler_waiting" if isinstance(exc, Waiting) else "handler_retry",
            handler=self.spec.name,
            error=repr(exc),
            deliveries=deliveries,
            delay=delay,
        )
        await msg.nak(delay=delay)
        return True

    async def _handle_waiting(self, event: Event) -> None:
        """Handle; with `wait_in_place`, a Waiting handler is asked again after each delay."""
        looks = 0
        outage = 0
        while True:
            try:
                return await self._handle_and_append(event)
            except Waiting as exc:
                if not self.spec.wait_in_place:
                    raise
                delays = self.spec.nak_delays
                delay = delays[min(looks, len(delays) - 1)]
                looks += 1
                log.debug(
                    "handler_waiting",
                    handler=self.spec.name,
                    error=repr(exc),
                    looks=looks,
                    delay=delay,
                    in_place=True,
                )
                if await self._stopped_within(delay):
                    raise Interrupted(f"{self.spec.name}: stopped while waiting") from exc
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # the bus is away (an election, a lost node): keep the message (heartbeats)
                # and try again, spending no delivery
                outage += 1
                delay = backoff(outage)
                report_transient(f"handler {self.spec.name}", exc, outage, delay)
                if await self._stopped_within(delay):
                    raise Interrupted(f"{self.spec.name}: stopped while the bus was away") from exc

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _handle_and_append(self, event: Event) -> None:
        for attempt in range(self.spec.conflict_retries):
            if self.spec.refresh is not None:
                await self.spec.refresh()
            result = await self._call(event)
            try:
                await self._append(result)
                return
            except ConcurrencyConflict as conflict:
                log.info(
                    "handler_conflict", handler=self.spec.name, attempt=attempt, error=str(conflict)
                )
        raise TransientError(
            f"{self.spec.name}: still conflicting after {self.spec.conflict_retries} tries"
        )

    async def _call(self, event: Event) -> Result:
        handle = self.spec.handle
        if self.spec.blocking:
            result = await asyncio.to_thread(handle, event)
        else:
            result = handle(event)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[return-value]

    async def _append(self, result: Result) -> None:
        if result is None:
            return
        if isinstance(result, Append):
            await self._append_conditional(result)
        elif result:
            await self.store.append_many(list(result))

    async def _append_conditional(self, result: Append) -> None:
        """Append atomically; a conflict caused only by junk on the filter (messages no view
        can decode, e.g. published by a stray client) does not change the decision, so the
        append is retried expecting the junk's sequence instead."""
        expected = result.expected_last_seq
        while True:
            try:
                await self.store.append_atomic(
                    result.events,
                    expected_last_seq=expected,
                    expected_filter=result.expected_filter,
                )
                return
            except ConcurrencyConflict as conflict:
                if expected is None or not result.events:
                    raise
                subject_filter = result.expected_filter or result.events[0].subject()
                junk_until = await self.store.junk_after(subject_filter, expected)
                if junk_until is None:
                    raise conflict from None
                log.warning(
                    "handler_junk_skipped",
                    handler=self.spec.name,
                    message=f"undecodable messages on {subject_filter} after {expected} "
                    f"up to {junk_until} ignored for the conditional append",
                )
                expected = junk_until

    async def _heartbeat(self, msg: Msg, over: asyncio.Event) -> None:
        """Tell JetStream the message is still being worked on (long training, evaluation)
        until `over` is set: a cancel alone can be swallowed mid-publish by nats-py, and the
        beat would then go on for a settled message forever (see KeptLease.stop)."""
        interval = max(self.spec.ack_wait / 3, 0.2)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(over.wait(), interval)
            if over.is_set():
                return
            await _quietly(msg.in_progress())

    async def _dead_letter(self, msg: Msg, exc: BaseException, deliveries: int) -> None:
        meta = msg.metadata
        seq = meta.sequence.stream
        text = msg.data.decode("utf-8", "replace")
        event_id = _event_id_of(msg.data)
        failed = HandlerFailed(
            event_id=derive_event_id(event_id or f"{meta.stream}/{seq}", f"dlq:{self.spec.name}"),
            causation_id=event_id,
            producer=self.producer,
            handler=self.stage,
            error_type=type(exc).__name__,
            error=str(exc)[:4000],
            input_stream=meta.stream,
            input_seq=seq,
            input_subject=msg.subject,
            input_event_id=event_id,
            input_excerpt=text[:2048],
            deliveries=deliveries,
        )
        await self.store.append(failed)
        self.failed += 1
        log.warning("handler_dead_lettered", handler=self.spec.name, seq=seq, error=str(exc)[:500])


def _event_id_of(data: bytes) -> str | None:
    import json

    try:
        value = json.loads(data).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _quietly(awaitable: Awaitable[object]) -> None:
    """Best-effort acknowledgement where the message may already be settled."""
    try:
        await awaitable
    except (TimeoutError, nats.errors.Error, sqlite3.Error) as exc:
        log.debug("ack_ignored", error=repr(exc))


async def run_until_stopped(runtimes: Sequence[HandlerRuntime], stop: asyncio.Event) -> None:
    """Run runtimes until `stop` is set, then drain them (each finishes its message)."""
    tasks = [asyncio.create_task(runtime.run(), name=runtime.spec.name) for runtime in runtimes]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for runtime in runtimes:
        runtime.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
