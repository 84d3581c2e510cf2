"""Read-model snapshots on a real nats-server and SQLite: round trip, refusals, cadence, and a
`ringloop run elo-rater` process that starts from the projector's snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from structlog.testing import LogCapture

from engine.rating import elo_update
from events import LOG_STREAM, EloUpdated, Event, MatchCompleted, MatchParticipant
from events.streams import SNAPSHOTS_BUCKET
from handlers.elo_rater import current_rating
from ops.app import App
from ops.bench.events import match_pair
from projections.elo import EloProjection
from projections.runner import ProjectionRunner, open_db
from projections.snapshot import (
    Anchor,
    Snapshot,
    SnapshotWriter,
    SnapshotWriters,
    start_view,
    write_snapshot,
)
from projections.tables import Table, Tables
from tests.conftest import repo_root

ROWS = Table("rows", {"id": str, "value": int}, ("id",))


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def append_pairs(app: App, first: int, count: int) -> int:
    """Append `count` matches, each with its rating update; return the stream's last seq."""
    rng = random.Random(first)
    events: list[Event] = []
    for index in range(first, first + count):
        events.extend(match_pair(index, rng))
    await app.store.append_many(events)
    return await app.store.last_seq(LOG_STREAM)


async def projector(app: App, folder: Path) -> ProjectionRunner:
    """The projector's Elo runner on a SQLite file, caught up."""
    runner = ProjectionRunner(EloProjection(), app.store, open_db(folder / "projections.db"))
    await runner.catch_up()
    return runner


async def rebuilt(app: App) -> dict[str, list[dict[str, Any]]]:
    runner = ProjectionRunner(EloProjection(), app.store, open_db(":memory:"))
    await runner.catch_up()
    return runner.state.snapshot()


async def handler_view(app: App, until: int) -> ProjectionRunner:
    """A handler process's own Elo view: in memory, started like App.start_views starts it."""
    runner = ProjectionRunner(EloProjection(), app.store, open_db(":memory:"))
    runner.start(functools.partial(start_view, use_snapshot=True))
    await runner.wait_for(until, timeout=30)
    return runner


def entries(capture: LogCapture, event: str) -> list[dict[str, Any]]:
    return [entry for entry in capture.entries if entry["event"] == event]


def test_deferred_table_is_built_on_first_read_and_keeps_newer_writes() -> None:
    state = Tables((ROWS,))
    loads = []

    def loader() -> dict[tuple[Any, ...], dict[str, Any]]:
        loads.append(1)
        return {("a",): {"id": "a", "value": 1}, ("b",): {"id": "b", "value": 2}}

    state.defer("rows", loader)
    state.put("rows", {"id": "b", "value": 20})  # a tail event, newer than the stored rows
    assert not loads and state.deferred == {"rows"}
    assert state.take_changes() == {"rows": ([{"id": "b", "value": 20}], [])}
    assert state.get("rows", "b") == {"id": "b", "value": 20}
    assert loads == [1] and not state.deferred
    assert state.count("rows") == 2 and state.get("rows", "a") == {"id": "a", "value": 1}
    with pytest.raises(ValueError, match="already holds rows"):
        state.defer("rows", loader)


async def test_snapshot_round_trip_folds_only_the_tail(
    app: App, tmp_path: Path, error_logs_fail: LogCapture
) -> None:
    await append_pairs(app, 0, 300)
    owner = await projector(app, tmp_path)
    snapshot = await write_snapshot(app.store, owner.projection, tmp_path / "projections.db")
    assert snapshot is not None and snapshot.last_seq == owner.position
    assert snapshot.rows["elo_matches"] == 300 and snapshot.rows["elo_history"] > 0
    last = await append_pairs(app, 300, 100)  # the tail, appended on top of the snapshot

    view = await handler_view(app, last)
    try:
        assert view.applied == 200  # only the tail's matches and updates were folded
        assert "elo_history" in view.state.deferred  # the tail never read the history
        assert view.state.snapshot() == await rebuilt(app)
    finally:
        await view.stop()
    [started] = entries(error_logs_fail, "view_started")
    assert started["snapshot"] is True and started["snapshot_seq"] == snapshot.last_seq
    assert started["folded"] == 200 and started["seq"] == last


def tampered(snapshot: Snapshot, how: str, last: int) -> Snapshot:
    if how == "fingerprint":
        return dataclasses.replace(snapshot, fingerprint="0" * 32)
    if how == "anchor":  # as if taken against a recreated stream
        anchor = Anchor("loop.match.completed.other", 0, snapshot.anchor.data_sha256)
        return dataclasses.replace(snapshot, anchor=anchor)
    return dataclasses.replace(snapshot, last_seq=last + 1000)  # beyond the end


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("fingerprint", "schema fingerprint"),
        ("anchor", "taken against another stream"),
        ("beyond_end", "beyond the end"),
    ],
)
async def test_a_snapshot_failing_a_check_is_refused_and_the_view_folds_from_seq_1(
    app: App, tmp_path: Path, error_logs_fail: LogCapture, how: str, reason: str
) -> None:
    last = await append_pairs(app, 1000 + 100 * len(how), 50)
    owner = await projector(app, tmp_path)
    snapshot = await write_snapshot(app.store, owner.projection, tmp_path / "projections.db")
    assert snapshot is not None
    bad = tampered(snapshot, how, last)
    await app.store.put_object(SNAPSHOTS_BUCKET, "elo", bad.encode(), description=bad.description)

    view = await handler_view(app, last)
    try:
        assert view.state.snapshot() == await rebuilt(app)
    finally:
        await view.stop()
    [refused] = entries(error_logs_fail, "snapshot_refused")
    assert reason in refused["reason"]
    [started] = entries(error_logs_fail, "view_started")
    assert started["snapshot"] is False and started["snapshot_seq"] == 0
    stored = await app.store.read_all(LOG_STREAM, "loop.>")
    elo_events = [s for s in stored if s.subject.startswith(("loop.elo.", "loop.match."))]
    assert started["folded"] == len(elo_events)  # everything, from sequence 1


async def stored_seq(app: App) -> int:
    info = await app.store.object_info(SNAPSHOTS_BUCKET, "elo")
    return int(json.loads(info.description or "{}").get("last_seq", 0)) if info else 0


async def test_the_projector_writes_after_enough_events_and_at_shutdown(
    app: App, tmp_path: Path
) -> None:
    owner = await projector(app, tmp_path)
    owner.start()
    writers = SnapshotWriters(
        [SnapshotWriter(owner, tmp_path / "projections.db", every_events=60, every_s=0)]
    )
    try:
        last = await append_pairs(app, 5000, 40)  # 80 positions: more than every_events

        async def written() -> bool:
            return await stored_seq(app) >= last

        await wait_until(written)
        last = await append_pairs(app, 5100, 5)  # fewer than every_events: no snapshot yet
        await owner.wait_for(last)
    finally:
        await writers.stop()  # a clean shutdown writes the last one
        await owner.stop()
    assert await stored_seq(app) == last


async def test_ringloop_run_elo_rater_starts_from_the_snapshot_and_rates_a_new_match(
    app: App, tmp_path: Path
) -> None:
    await append_pairs(app, 7000, 200)
    owner = await projector(app, tmp_path)
    snapshot = await write_snapshot(app.store, owner.projection, tmp_path / "projections.db")
    assert snapshot is not None
    await append_pairs(app, 7200, 20)  # a tail
    # The rater's durable consumer as a rater running all along would have left it.
    await app.store.js.add_consumer(
        LOG_STREAM,
        ConsumerConfig(
            durable_name="elo-rater", ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW, filter_subjects=["loop.match.completed.>"],
        ),
    )  # fmt: skip
    log_file = tmp_path / "rater.log"
    command = [sys.executable, "-m", "ops", "run", "elo-rater", "--nats", app.settings.nats.url,
               "--state-dir", str(tmp_path / "state"), "--log-level", "info"]  # fmt: skip
    with log_file.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=repo_root(), stderr=stderr)  # type: ignore[arg-type]
    try:
        new = MatchCompleted(
            config="square8_2p",
            match_id="after-the-snapshot",
            participants=[
                MatchParticipant(participant_id="model-1", rank=1, seat=1),
                MatchParticipant(participant_id="model-2", rank=2, seat=2),
            ],
        )
        new_seq = await app.store.append(new)

        async def rated() -> bool:
            stored = await app.store.read_all(LOG_STREAM, "loop.elo.updated.square8_2p")
            return any(s.event.match_id == new.match_id for s in stored)  # type: ignore[attr-defined]

        await wait_until(rated, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    assert process.returncode == 0
    stored = await app.store.read_all(LOG_STREAM, "loop.elo.updated.square8_2p")
    [update] = [s.event for s in stored if s.event.match_id == new.match_id]  # type: ignore[attr-defined]
    assert isinstance(update, EloUpdated)
    # The ratings before are those of the full history, not of the tail alone.
    view = ProjectionRunner(EloProjection(), app.store, open_db(":memory:"))
    await view.catch_up(until_seq=new_seq)
    ranks = {"model-1": 1, "model-2": 2}
    before = {key: current_rating(view.state, "square8_2p", key) for key in ranks}
    assert {c.participant_id: c.before for c in update.changes} == before
    assert {c.participant_id: c.after for c in update.changes} == elo_update(before, ranks)
    assert any(value != 1500.0 for value in before.values())
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    [started] = [line for line in lines if line.get("event") == "view_started"]
    assert started["snapshot"] is True and started["snapshot_seq"] == snapshot.last_seq
    assert 40 <= started["folded"] <= 42  # the tail, and the new match if it came in time


async def test_get_object_reads_every_chunk_and_checks_the_digest(app: App) -> None:
    data = random.Random(5).randbytes(1_300_000)  # three chunks
    await app.store.put_object(SNAPSHOTS_BUCKET, "chunks", data)
    info, got = await app.store.get_object(SNAPSHOTS_BUCKET, "chunks")
    assert got == data and info.chunks == 3
