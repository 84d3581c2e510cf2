"""The event store against a real nats-server: dedupe, conditional appends, ranged reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError
from nats.js.errors import APIError

from events import (
    GAMES_STREAM,
    LOG_STREAM,
    DaemonHeartbeat,
    EloUpdated,
    GameCompleted,
    RatingChange,
)
from ops.app import App
from projections import eventstore
from projections.eventstore import ConcurrencyConflict


def heartbeat(n: int) -> DaemonHeartbeat:
    return DaemonHeartbeat(daemon=f"test-{n}", stats={"n": float(n)})


def elo_event(config: str, match: str) -> EloUpdated:
    change = RatingChange(participant_id="a", before=1500, after=1516, rank=1)
    return EloUpdated(config=config, match_id=match, changes=[change], k_factor=32)


async def test_append_deduplicates_by_event_id(app: App) -> None:
    event = heartbeat(1)
    first = await app.store.append(event)
    again = await app.store.append(event)
    assert again == first
    second = heartbeat(2)
    seqs = await app.store.append_many([event, second, second])
    assert seqs[0] == first and seqs[1] == seqs[2] and seqs[1] > first
    stored = await app.store.read_all(LOG_STREAM, "loop.system.heartbeat")
    assert [s.event.event_id for s in stored].count(event.event_id) == 1


async def test_optimistic_concurrency_conflict_on_subject_filter(app: App) -> None:
    subject = "loop.elo.updated.hex8_3p"
    seq = await app.store.append(
        elo_event("hex8_3p", "m1"), expected_last_seq=0, expected_filter=subject
    )
    with pytest.raises(ConcurrencyConflict, match="hex8_3p"):
        await app.store.append(
            elo_event("hex8_3p", "m2"), expected_last_seq=0, expected_filter=subject
        )
    # the same expectation on a wildcard filter spanning configs
    nxt = await app.store.append(
        elo_event("hex8_3p", "m3"), expected_last_seq=seq, expected_filter="loop.elo.updated.*"
    )
    assert nxt > seq
    assert await app.store.last_seq(LOG_STREAM, subject) == nxt


async def test_atomic_batch_all_or_nothing_and_redelivery(app: App) -> None:
    subject = "loop.elo.updated.hex8_4p"
    batch = [elo_event("hex8_4p", "b1"), elo_event("hex8_4p", "b2")]
    last = await app.store.append_atomic(batch, expected_last_seq=0, expected_filter=subject)
    assert last is not None
    assert (
        await app.store.append_atomic(batch, expected_last_seq=0, expected_filter=subject) is None
    )
    with pytest.raises(ConcurrencyConflict):
        await app.store.append_atomic(
            [elo_event("hex8_4p", "b3"), elo_event("hex8_4p", "b4")],
            expected_last_seq=0,
            expected_filter=subject,
        )
    stored = await app.store.read_all(LOG_STREAM, subject)
    assert [s.event.match_id for s in stored] == ["b1", "b2"]  # type: ignore[attr-defined]


async def test_atomic_batch_failing_in_its_middle_stores_nothing(app: App) -> None:
    subject = "loop.elo.updated.square19_4p"
    games_before = await app.store.last_seq(GAMES_STREAM)
    # the second event goes to the games stream: the log's part of the batch has a gap, and
    # the server refuses all of it at the commit (the first event was already sent)
    stray = GameCompleted(config="square19_4p", purpose="selfplay", game_id="stray", winner=1,
                          seats=[{"seat": i, "participant_id": f"p{i}"} for i in range(1, 5)],
                          ranking=[1, 2, 3, 4], moves=["a1"])  # fmt: skip
    gap = [elo_event("square19_4p", "c1"), stray, elo_event("square19_4p", "c2")]
    with pytest.raises(APIError, match="atomic publish batch is incomplete"):
        await app.store.append_atomic(gap, expected_last_seq=0, expected_filter=subject)
    # a middle event too big to send: the batch is never committed
    big = EloUpdated(config="square19_4p", match_id="big", k_factor=32, changes=[
        RatingChange(participant_id=f"p{i}", before=1500, after=1500, rank=1) for i in range(20_000)
    ])  # fmt: skip
    unsent = [elo_event("square19_4p", "d1"), big, elo_event("square19_4p", "d2")]
    with pytest.raises(MaxPayloadError):
        await app.store.append_atomic(unsent, expected_last_seq=0, expected_filter=subject)
    assert await app.store.read_all(LOG_STREAM, subject) == []
    assert await app.store.last_seq(GAMES_STREAM) == games_before
    # the failed batches' events were not remembered as appended: the same ids land whole
    whole = [gap[0], gap[2], unsent[0], unsent[2]]
    last = await app.store.append_atomic(whole, expected_last_seq=0, expected_filter=subject)
    stored = await app.store.read_all(LOG_STREAM, subject)
    assert [s.event.event_id for s in stored] == [e.event_id for e in whole]
    assert last == stored[-1].seq


async def test_read_by_sequence_and_time_range(app: App) -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=5)
    seqs = await app.store.append_many([heartbeat(100 + i) for i in range(20)])
    middle = await app.store.read_all(
        LOG_STREAM, "loop.system.>", start_seq=seqs[5], end_seq=seqs[9]
    )
    assert [s.seq for s in middle] == seqs[5:10]
    recent = await app.store.read_all(LOG_STREAM, "loop.system.heartbeat", start_time=before)
    assert [s.seq for s in recent][-20:] == seqs
    cut = next(s.time for s in recent if s.seq == seqs[10])
    until = await app.store.read_all(
        LOG_STREAM, "loop.system.heartbeat", start_time=before, end_time=cut
    )
    # the server-side time cut equals filtering the uncut read by time
    assert [s.seq for s in until] == [s.seq for s in recent if s.time <= cut]
    assert set(seqs[:11]) <= {s.seq for s in until}
    assert not {s.seq for s in until} & {s.seq for s in recent if s.time > cut}


async def test_follow_sees_new_events(app: App) -> None:
    start = await app.store.last_seq(LOG_STREAM) + 1
    seen: list[int] = []

    async def follower() -> None:
        async for chunk in app.store.read_raw(
            LOG_STREAM, "loop.system.>", start_seq=start, follow=True
        ):
            seen.extend(r.seq for r in chunk)
            if len(seen) >= 3:
                return

    task = asyncio.create_task(follower())
    seqs = await app.store.append_many([heartbeat(200 + i) for i in range(3)])
    await asyncio.wait_for(task, 30)
    assert seen == seqs


async def test_a_read_whose_consumer_vanishes_resumes_after_its_last_message(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py does not always recreate a lost ordered consumer (nats.py#510); the first
    reader here gets one message, then its consumer is deleted and it hears nothing more."""
    seqs = await app.store.append_many([heartbeat(300 + i) for i in range(40)])
    readers: list[eventstore._ChunkReader] = []
    real = eventstore._ChunkReader.on_message

    async def first_reader_goes_deaf(reader: eventstore._ChunkReader, msg: Msg) -> None:
        if reader not in readers:
            readers.append(reader)
        if reader is readers[0]:
            if not reader._buffer and not getattr(reader, "deaf", False):
                reader.deaf = True  # type: ignore[attr-defined]
                await real(reader, msg)
                await app.store.js.delete_consumer(LOG_STREAM, msg.metadata.consumer)
            return
        await real(reader, msg)

    monkeypatch.setattr(eventstore._ChunkReader, "on_message", first_reader_goes_deaf)
    seen: list[int] = []

    async def read() -> None:
        async for chunk in app.store.read_raw(
            LOG_STREAM, "loop.system.heartbeat", start_seq=seqs[0], end_seq=seqs[-1], stall_s=0.5
        ):
            seen.extend(r.seq for r in chunk)

    await asyncio.wait_for(read(), 30)
    assert len(readers) >= 2 and seen == seqs  # every message once, in order


async def test_a_read_that_never_hears_again_fails_as_stalled(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = await app.store.append_many([heartbeat(400 + i) for i in range(3)])

    async def deaf(reader: eventstore._ChunkReader, msg: Msg) -> None:
        return None

    monkeypatch.setattr(eventstore._ChunkReader, "on_message", deaf)
    monkeypatch.setattr(eventstore, "CALL_DEADLINE_S", 1.0)
    with pytest.raises(eventstore.ReadStalled, match=f"before sequence {seqs[-1]}"):
        async for _ in app.store.read_raw(
            LOG_STREAM, "loop.system.heartbeat", start_seq=seqs[0], end_seq=seqs[-1], stall_s=0.3
        ):
            pass
