"""Bounds work cluster-wide with leases in the KV bucket "ringloop-leases"; emits TaskStarted,
TaskFinished and TaskRefused, and (as a handler) consumes TaskStarted to report leases that
expired without a TaskFinished.

Mechanism, measured on nats-server 2.15 / nats-py 2.16:
- acquire: publish to ``$KV.ringloop-leases.<key>`` with ``Nats-Expected-Last-Subject-Sequence``
  set to the key's last sequence when the key is free (0, a delete, or an expiry marker)
  and ``Nats-TTL``; a concurrent acquirer gets "wrong last sequence" (10071).
- renew: the same publish, expecting the lease's revision; the new revision is the new
  fencing token, so tokens only grow. kv.update cannot carry a TTL, hence the raw publish.
- expiry: the server removes the entry at its TTL (within ~50 ms) and leaves a
  ``Nats-Marker-Reason: MaxAge`` marker for `limit_marker_ttl` (5 s). nats-py's kv.get and
  kv.create treat that marker as a live value, so this client reads the raw last message
  and takes over a marker by expecting its sequence.
- release: kv.delete conditional on the revision, after TaskFinished is appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

import psutil
import structlog
from nats.errors import Error as NatsError
from nats.js.api import RawStreamMsg
from nats.js.errors import APIError, KeyWrongLastSequenceError, NotFoundError

from events import (
    Event,
    Producer,
    TaskFinished,
    TaskRefused,
    TaskStarted,
)
from events.streams import LEASES_BUCKET
from handlers.runtime import Consumer, Waiting
from handlers.settings import LoopSettings
from projections.eventstore import WRONG_LAST_SEQUENCE, EventStore
from projections.pipeline import task as task_row
from projections.tables import Tables
from projections.transient import CALL_DEADLINE_S, retry_transient

NAME = "coordinator"


def consumer(settings: LoopSettings) -> Consumer:
    """A running task's TaskStarted is looked at again once per lease TTL until it ends."""
    return Consumer(batch=16, max_deliver=100_000, nak_delays=(settings.tasks.lease_ttl_s,))


LOOP_KEY = "loop"
TASK_TYPES = ("training", "evaluation", "selfplay")

log = structlog.get_logger(__name__)
Outcome = Literal["succeeded", "failed", "cancelled", "expired"]


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: written as the KV value, quoted when someone is refused."""

    host: str
    pid: int
    since: str
    task_id: str | None = None

    @classmethod
    def current(cls, task_id: str | None = None) -> Holder:
        return cls(socket.gethostname(), os.getpid(), datetime.now(UTC).isoformat(), task_id)

    def describe(self) -> str:
        task = f" task {self.task_id}" if self.task_id else ""
        return f"host {self.host} pid {self.pid} since {self.since}{task}"


@dataclass(frozen=True)
class Lease:
    key: str
    token: int
    holder: Holder
    ttl_s: float


class LeaseLost(RuntimeError):
    """A renewal found the key moved on: the lease expired or someone else took it."""


class LoopAlreadyRunning(RuntimeError):
    """A second improvement loop against the same NATS: the message names the holder."""

    def __init__(self, holder: Holder | None, ttl_s: float) -> None:
        who = holder.describe() if holder else "an unknown holder"
        super().__init__(
            f"another improvement loop already runs against this NATS ({who}); stop it, or "
            f"if it died, wait up to {ttl_s:g}s for its lease to expire"
        )
        self.holder = holder


def lease_key(*parts: object) -> str:
    """A valid KV key from parts (host names may hold characters keys may not)."""
    return ".".join(re.sub(r"[^-/_=a-zA-Z0-9]", "_", str(part)) for part in parts)


class LeaseClient:
    """Leases with TTL, renewal and fencing tokens on the KV bucket's underlying stream."""

    def __init__(self, store: EventStore, bucket: str = LEASES_BUCKET) -> None:
        self.js = store.js
        self.nc = store.nc
        self.bucket = bucket
        self.stream = f"KV_{bucket}"

    def subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    async def read(self, key: str) -> tuple[int, Holder | None]:
        """(last sequence on the key, the live holder or None when the key is free)."""
        msg = await self._last(key)
        return (0, None) if msg is None else self._parse(msg)

    async def _last(self, key: str) -> RawStreamMsg | None:
        """The key's last message (None: never written), riding out an election."""

        async def get() -> RawStreamMsg | None:
            try:
                return await self.js.get_last_msg(self.stream, self.subject(key))
            except NotFoundError:
                return None

        return await retry_transient(get, what=f"reading lease {key!r}", deadline_s=CALL_DEADLINE_S)

    @staticmethod
    def _parse(msg: RawStreamMsg) -> tuple[int, Holder | None]:
        headers = msg.headers or {}
        if "Nats-Marker-Reason" in headers or headers.get("KV-Operation") in ("DEL", "PURGE"):
            return int(msg.seq or 0), None
        return int(msg.seq or 0), Holder(**json.loads(msg.data or b"{}"))

    async def acquire(self, key: str, holder: Holder, ttl_s: float) -> Lease | None:
        """Take the key if free (None when someone holds it)."""
        seq, current = await self.read(key)
        if current is not None:
            return None
        try:
            token = await self._publish(key, holder, expected=seq, ttl_s=ttl_s)
        except LeaseLost:
            return None  # another acquirer won the race
        return Lease(key, token, holder, ttl_s)

    async def acquire_or_take_over(self, key: str, holder: Holder, ttl_s: float) -> Lease | None:
        """Take the key if free or stale (None when a live holder has it).

        Stale: the holder's process is gone (same host, by pid), or its last write is older
        than its TTL by the server's clock (the TTL itself cannot run while no server does).
        The takeover is conditional on the stale revision (fencing): the old holder's next
        renewal then finds the key moved on (LeaseLost), and of two racing takers one wins.
        """
        lease = await self.acquire(key, holder, ttl_s)
        if lease is not None:
            return lease
        msg = await self._last(key)
        if msg is None:
            return None
        seq, current = self._parse(msg)
        if current is None:
            return None  # freed meanwhile; the caller's next try takes it
        reason = await self.stale_reason(current, msg, ttl_s)
        if reason is None:
            return None
        try:
            token = await self._publish(key, holder, expected=seq, ttl_s=ttl_s)
        except LeaseLost:
            return None
        log.warning(
            "lease_taken_over",
            key=key,
            message=f"took over lease {key!r} of {current.describe()}: {reason}",
        )
        return Lease(key, token, holder, ttl_s)

    async def stale_reason(self, current: Holder, msg: RawStreamMsg, ttl_s: float) -> str | None:
        """Why a held lease is stale (None: its holder may be alive)."""
        if process_gone(current):
            return f"process {current.pid} on {current.host} is gone"
        written = msg.time
        if written is None:
            return None
        age = (await self.server_now() - written).total_seconds()
        if age > ttl_s:
            return f"its last renewal is {age:.1f}s old by the server's clock (TTL {ttl_s:g}s)"
        return None

    async def server_now(self) -> datetime:
        """The server's clock: the time stamp of a stream-info answer."""
        reply = await self.nc.request(f"$JS.API.STREAM.INFO.{self.stream}", b"", timeout=5)
        stamp = str(json.loads(reply.data)["ts"])
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")

    async def renew(self, lease: Lease) -> Lease:
        """Extend the TTL; the new revision is the new (larger) fencing token.

        A renewal whose ack was lost (a timeout) may still have landed: the key then holds
        this very holder at a later revision (its TTL counting from that write), and that
        revision is adopted rather than reported as lost. Any other holder, or a free key,
        is LeaseLost.
        """
        try:
            token = await self._publish(
                lease.key, lease.holder, expected=lease.token, ttl_s=lease.ttl_s
            )
        except LeaseLost:
            seq, current = await self.read(lease.key)
            if current is None:
                raise LeaseLost(
                    f"lease {lease.key!r} expired: no renewal landed within its "
                    f"{lease.ttl_s:g}s TTL (this process was stalled or the server away)"
                ) from None
            if current != lease.holder:
                raise LeaseLost(
                    f"lease {lease.key!r} was taken over by {current.describe()}"
                ) from None
            if seq <= lease.token:
                raise
            log.info("lease_renewal_adopted", key=lease.key, token=seq, expected=lease.token)
            return Lease(lease.key, seq, lease.holder, lease.ttl_s)
        return Lease(lease.key, token, lease.holder, lease.ttl_s)

    async def release(self, lease: Lease) -> bool:
        """Delete the key if this lease still holds it."""
        kv = await self.js.key_value(self.bucket)
        try:
            await kv.delete(lease.key, last=lease.token)
        except (KeyWrongLastSequenceError, APIError):
            return False
        return True

    async def _publish(self, key: str, holder: Holder, *, expected: int, ttl_s: float) -> int:
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        data = json.dumps(asdict(holder)).encode()
        try:
            ack = await self.js.publish(
                self.subject(key), data, headers=headers, msg_ttl=max(1, math.ceil(ttl_s))
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise LeaseLost(f"lease {key!r} moved past revision {expected}") from None
            raise
        return int(ack.seq)


class TaskRefusedError(RuntimeError):
    """Every slot of a task type is taken; TaskRefused was appended."""


class TaskCoordinator:
    """Per-type cluster limits from LoopSettings.tasks, announced as task events."""

    def __init__(self, store: EventStore, settings: LoopSettings, producer: Producer) -> None:
        self.store = store
        self.settings = settings
        self.leases = LeaseClient(store)
        self.producer = producer

    def slots(self, task_type: str, host: str) -> list[str]:
        limit = self.settings.tasks.limit(task_type)
        if task_type == "selfplay":
            return [lease_key("task", task_type, host, slot) for slot in range(limit)]
        return [lease_key("task", task_type, slot) for slot in range(limit)]

    async def acquire(self, task_type: str, task_id: str) -> Lease | None:
        """A lease on a free slot (TaskStarted), or None when all are taken (TaskRefused)."""
        holder = Holder.current(task_id)
        holders = []
        for key in self.slots(task_type, holder.host):
            lease = await self.leases.acquire(key, holder, self.settings.tasks.lease_ttl_s)
            if lease is not None:
                await self.store.append(TaskStarted(
                    producer=self.producer, task_id=task_id, task_type=task_type, lease_key=key,
                    holder=f"{holder.host}:{holder.pid}", fencing_token=lease.token))  # fmt: skip
                return lease
            holders.append((await self.leases.read(key))[1])
        busy = "; ".join(h.describe() for h in holders if h is not None)
        await self.store.append(TaskRefused(
            producer=self.producer, task_type=task_type, holder=busy or None,
            reason=f"all {len(holders)} {task_type} slots taken"))  # fmt: skip
        return None

    async def finish(self, lease: Lease, task_type: str, outcome: Outcome = "succeeded") -> None:
        """Announce the end first, then free the slot (so the reaper never calls it expired)."""
        await self.store.append(TaskFinished(
            producer=self.producer, task_id=lease.holder.task_id or lease.key,
            task_type=task_type, outcome=outcome))  # fmt: skip
        await self.leases.release(lease)

    @contextlib.asynccontextmanager
    async def task(self, task_type: str, task_id: str) -> AsyncIterator[KeptLease]:
        """Hold a slot for the block, renewing it; raises TaskRefusedError when none is free."""
        lease = await self.acquire(task_type, task_id)
        if lease is None:
            raise TaskRefusedError(f"no free {task_type} slot for task {task_id!r}")
        kept = KeptLease(self.leases, lease, self.settings.tasks.renew_every_s)
        outcome: Outcome = "failed"
        try:
            async with kept:
                yield kept
            outcome = "succeeded"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            await self.finish(kept.lease, task_type, outcome)


class KeptLease:
    """Renews a lease in the background; `lost` is set if a renewal finds it gone."""

    def __init__(self, leases: LeaseClient, lease: Lease, every_s: float) -> None:
        self.leases = leases
        self.lease = lease
        self.every_s = every_s
        self.lost = asyncio.Event()
        self.lost_reason = ""  # why, once `lost` is set
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> KeptLease:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._renew_forever(), name=f"lease:{self.lease.key}")
        return self

    async def stop(self) -> None:
        """Stop renewing. The renewer is told by a flag as well as cancelled: nats-py can
        swallow a cancellation that lands mid-publish (Client._flush_pending catches
        CancelledError), and a renewer that outlived its cancel kept a finished task's
        slot for the rest of a run. Waits at most the lease's TTL for it to end."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.lease.ttl_s)
        if not done:
            log.error("lease_renewer_stuck", key=self.lease.key, waited_s=self.lease.ttl_s)
        elif not task.cancelled() and task.exception() is not None:
            # the renewer died; stopping must still succeed
            log.error("lease_renewer_failed", key=self.lease.key, error=repr(task.exception()))

    async def release(self) -> bool:
        """Stop renewing and free the key (False if it had already moved on)."""
        await self.stop()
        return await self.leases.release(self.lease)

    async def __aenter__(self) -> KeptLease:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _renew_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every_s)
            if self._stopping.is_set():
                return
            try:
                self.lease = await self.leases.renew(self.lease)
            except LeaseLost as exc:
                log.warning("lease_lost", key=self.lease.key, error=str(exc))
                self.lost_reason = str(exc)
                self.lost.set()
                return
            except (NatsError, TimeoutError, OSError) as exc:
                # a slow or reconnecting server: try again next tick; if the TTL runs out
                # meanwhile, the next renewal finds the key moved on and reports LeaseLost
                log.warning("lease_renew_failed", key=self.lease.key, error=repr(exc))


async def acquire_loop_lease(store: EventStore, settings: LoopSettings) -> KeptLease:
    """The one-improvement-loop-per-cluster lease, renewing in the background until
    `release()`. A stale lease (its holder's process is gone, or its last renewal is older
    than the TTL by the server's clock) is taken over; a live one raises LoopAlreadyRunning
    naming the holder (host, pid, since).
    """
    leases = LeaseClient(store)
    ttl = settings.tasks.loop_lease_ttl_s
    holder = Holder.current()
    lease = await retry_transient(
        lambda: leases.acquire_or_take_over(LOOP_KEY, holder, ttl), what="taking the loop lease"
    )
    if lease is None:
        raise LoopAlreadyRunning((await leases.read(LOOP_KEY))[1], ttl)
    return KeptLease(leases, lease, min(settings.tasks.renew_every_s, ttl / 3)).start()


def process_gone(holder: Holder) -> bool:
    """Whether the holder is a process of this host that no longer runs (a pid another
    host wrote cannot be checked here)."""
    if holder.host != socket.gethostname() or holder.pid == os.getpid():
        return False
    return not psutil.pid_exists(holder.pid)


class LeaseStillHeld(Waiting):
    """The reaper looks again after a lease TTL (the input is nak'ed with a delay)."""


async def on_task_started(
    event: Event, *, leases: LeaseClient, pipeline: Tables, producer: Producer
) -> list[Event]:
    """Reaper: once a started task's lease is gone without TaskFinished, report it expired."""
    if not isinstance(event, TaskStarted):
        return []
    row = task_row(pipeline, event.task_id)
    if row is not None and row["outcome"] is not None:
        return []
    _, holder = await leases.read(event.lease_key)
    if holder is not None and holder.task_id == event.task_id:
        raise LeaseStillHeld(f"task {event.task_id!r} still holds {event.lease_key!r}")
    finished = event.caused(
        TaskFinished, "expired", producer=producer, task_id=event.task_id,
        task_type=event.task_type, outcome="expired",
    )  # fmt: skip
    return [finished]
