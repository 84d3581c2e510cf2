"""Fuzzed messages on every consumed subject — malformed JSON, wrong types, unknown versions
and types, oversized bodies, valid events on a subject not theirs — while every consumer of
the wiring and every projection run: each is dead-lettered by each of its consumers with a
reason, the read models are unchanged, and a valid event afterwards is still handled."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fault_invariants import Figures, consumers_drained, wait_until

from events import LOG_STREAM, HandlerFailed, MatchCompleted, decode_on
from events.subjects import stream_of
from handlers.runtime import HandlerRuntime, run_until_stopped
from ops.app import App
from ops.wiring import PROJECTIONS, reactions, stages
from projections.transient import retry_transient

GOLDEN = Path(__file__).resolve().parents[2] / "events" / "golden"
CONCRETE = {"games.>": "games.square8.2p.selfplay", "loop.task.started": "loop.task.started"}
KINDS = ("malformed", "wrong_type", "unknown_version", "unknown_type", "oversized", "elsewhere")


def concrete(subject_filter: str) -> str:
    return CONCRETE.get(subject_filter, subject_filter.replace(">", "square8_2p"))


def golden(event_type: str) -> dict[str, Any]:
    """The newest golden payload of an event type."""
    paths = sorted(
        GOLDEN.glob(f"{event_type}.v*.json"), key=lambda p: int(p.stem.rpartition("v")[2])
    )
    return dict(json.loads(paths[-1].read_text()))


class Fuzzer:
    """Seeded bad messages for a subject; each carries a fresh event id (where it has one) so
    that every dead letter is its own."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.types = sorted({p.name.partition(".v")[0] for p in GOLDEN.glob("*.json")})

    def message(self, kind: str, event_type: str, subject: str) -> bytes:
        """A message of `kind` that no consumer of `subject` may accept (checked)."""
        while True:
            data = self._draw(kind, event_type)
            try:
                decode_on(subject, data)
            except ValueError:
                return data

    def _draw(self, kind: str, event_type: str) -> bytes:
        payload = {**golden(event_type), "event_id": str(uuid.uuid4())}
        if kind == "malformed":
            text = json.dumps(payload)
            return text[: self.rng.randrange(1, len(text) - 1)].encode() + bytes(
                self.rng.randrange(256) for _ in range(self.rng.randrange(0, 8))
            )
        if kind == "wrong_type":
            field = self.rng.choice([k for k in payload if k not in ("type", "event_id")])
            payload[field] = self.rng.choice([[1, 2], {"x": None}, 3.5, "?", None, True])
        elif kind == "unknown_version":
            payload["version"] = self.rng.randrange(50, 10_000)
        elif kind == "unknown_type":
            payload["type"] = f"no.such.{self.rng.randrange(10**6)}"
        elif kind == "oversized":
            payload["padding"] = "x" * self.rng.randrange(100_000, 400_000)
        elif kind == "elsewhere":
            other = self.rng.choice([t for t in self.types if t != event_type])
            payload = {**golden(other), "event_id": str(uuid.uuid4())}
        return json.dumps(payload).encode()


@pytest_asyncio.fixture(scope="module")
async def everything(app: App) -> AsyncIterator[list[HandlerRuntime]]:
    """Every consumer of the wiring (selfplay's worker loop aside) and every projection."""
    runtimes = [
        HandlerRuntime(spec, app.store) for name in stages() for spec in app.stage(name).specs()
    ]
    for name in PROJECTIONS:
        app.start_views([name], None)
    stop = asyncio.Event()
    task = asyncio.create_task(run_until_stopped(runtimes, stop))
    yield runtimes
    stop.set()
    await task


async def fuzz(app: App, runtimes: list[HandlerRuntime], count: int, seed: int) -> Figures:
    figures = Figures(f"fuzz-{count}")
    targets = [(r, r.spec.subjects[0]) for r in runtimes]
    events = {r.durable: r.event for r in reactions()}
    fuzzer = Fuzzer(seed)
    await app.store.append(_valid_match(f"before-{seed}"))
    await wait_until(lambda: _rated(app, f"before-{seed}"), 60, "the valid match before")
    for name in PROJECTIONS:
        await app.refresh(name, 60)
    before = {name: app.runners[name].state.snapshot() for name in PROJECTIONS}

    began = time.monotonic()
    expected: set[tuple[str, str, int]] = set()
    kinds = dict.fromkeys(KINDS, 0)
    for index in range(count):
        runtime, subject_filter = targets[index % len(targets)]
        event_cls = events[runtime.spec.name]
        subject = concrete(subject_filter)
        kind = KINDS[fuzzer.rng.randrange(len(KINDS))]
        kinds[kind] += 1
        event_type = str(event_cls.model_fields["type"].default)
        data = fuzzer.message(kind, event_type, subject)
        ack = await retry_transient(  # the same bytes again: a copy is one more dead letter
            lambda subject=subject, data=data: app.store.js.publish(subject, data),
            what="publishing fuzz",
        )
        for other, other_filter in targets:
            if concrete(other_filter) == subject:
                expected.add((other.stage, ack.stream, ack.seq))
    figures["published_s"] = round(time.monotonic() - began, 1)

    durables = {stream_of(r.event): [] for r in reactions()}  # type: dict[str, list[str]]
    for runtime in runtimes:
        durables[runtime.spec.stream].append(runtime.durable)

    async def drained() -> bool:
        for stream, names in durables.items():
            if not await consumers_drained(app, stream, names):
                return False
        return True

    await wait_until(drained, 600, "every consumer to settle the fuzz", every=0.5)
    figures["settled_s"] = round(time.monotonic() - began, 1)
    stored = await app.store.read_all(LOG_STREAM, "loop.dlq.>")
    letters = [s.event for s in stored if isinstance(s.event, HandlerFailed)]
    found = {(e.handler, e.input_stream, e.input_seq) for e in letters}
    missing = expected - found
    assert not missing, (
        f"{len(missing)} fuzzed messages not dead-lettered, e.g. {sorted(missing)[:3]}"
    )
    assert all(e.error and e.error_type for e in letters)

    for name in PROJECTIONS:
        await app.refresh(name, 120)
    after = {name: app.runners[name].state.snapshot() for name in PROJECTIONS}
    # the timeline records dead letters by design: it may only have gained those entries
    old, new = before.pop("timeline")["timeline_entries"], after.pop("timeline")["timeline_entries"]
    added = [entry for entry in new if entry not in old]
    assert len(new) == len(old) + len(added) and {e["kind"] for e in added} == {"dead_letter"}
    assert after == before, "a projection changed under the fuzz"

    await app.store.append(_valid_match(f"after-{seed}"))  # the loop still runs
    await wait_until(lambda: _rated(app, f"after-{seed}"), 60, "the valid match after the fuzz")
    figures["messages"] = count
    figures["dead_letters"] = len(expected)
    figures["kinds"] = kinds
    figures.show()
    return figures


def _valid_match(match_id: str) -> MatchCompleted:
    participants = [
        {"participant_id": "random", "rank": 2},
        {"participant_id": "heuristic", "rank": 1},
    ]
    return MatchCompleted(config="square8_2p", match_id=match_id, participants=participants)


def _rated(app: App, match_id: str) -> Any:
    async def check() -> bool:  # raw: the fuzz sits on this subject too
        async for chunk in app.store.read_raw(LOG_STREAM, "loop.elo.updated.square8_2p"):
            for record in chunk:
                try:
                    event = decode_on(record.subject, record.data)
                except ValueError:
                    continue
                if getattr(event, "match_id", None) == match_id:
                    return True
        return False

    return check()


async def test_fuzzed_messages_are_dead_lettered_and_change_nothing(
    app: App, everything: list[HandlerRuntime]
) -> None:
    await fuzz(app, everything, 1_000, seed=1)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_ten_thousand_fuzzed_messages(app: App, everything: list[HandlerRuntime]) -> None:
    await fuzz(app, everything, 10_000, seed=2)
