"""The Elo write path end to end on a real nats-server: rater, projection, replay, DLQ, races."""

from __future__ import annotations

import asyncio
import random

import pytest

from events import LOG_STREAM, EloUpdated, HandlerFailed, MatchCompleted
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.replay import check, live_state, rebuild
from projections.base import fold
from projections.elo import EloProjection
from projections.runner import ProjectionRunner, open_db


def match(config: str, ranks: dict[str, int], match_id: str) -> MatchCompleted:
    participants = [{"participant_id": p, "rank": r} for p, r in ranks.items()]
    return MatchCompleted(config=config, match_id=match_id, participants=participants)


def random_matches(
    config: str, n: int, players: list[str], seed: int, seats: int = 2
) -> list[MatchCompleted]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        chosen = rng.sample(players, seats)
        ranks = {p: rng.randint(1, seats) for p in chosen}
        out.append(match(config, ranks, f"{config}-{seed}-{i}"))
    return out


async def rated(app: App, config: str, count: int, timeout: float = 20) -> list[EloUpdated]:
    async def poll() -> list[EloUpdated]:
        while True:
            stored = await app.store.read_all(LOG_STREAM, f"loop.elo.updated.{config}")
            if len(stored) >= count:
                return [s.event for s in stored]  # type: ignore[misc]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def assert_chain_consistent(updates: list[EloUpdated]) -> dict[str, float]:
    """Each update must start from the ratings the previous updates left: no interleaving."""
    current: dict[str, float] = {}
    for update in updates:
        for change in update.changes:
            assert change.before == current.get(change.participant_id, change.before), update
            current[change.participant_id] = change.after
    return current


@pytest.fixture(scope="module")
async def rater(app: App):  # type: ignore[no-untyped-def]
    runtime = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    task = asyncio.create_task(runtime.run())
    yield runtime
    runtime.stop()
    await task


async def test_two_player_match_updates_ratings(app: App, rater: HandlerRuntime) -> None:
    await app.store.append(match("square8_2p", {"alpha": 1, "beta": 2}, "first"))
    [update] = await rated(app, "square8_2p", 1)
    changes = {c.participant_id: (c.before, c.after) for c in update.changes}
    assert changes == {"alpha": (1500.0, 1516.0), "beta": (1500.0, 1484.0)}
    await app.refresh("elo")
    row = app.runners["elo"].state.get("elo_ratings", "square8_2p", "alpha")
    assert row is not None and row["elo"] == 1516.0 and row["wins"] == 1


async def test_pinned_baselines_never_move_and_multiplayer(app: App, rater: HandlerRuntime) -> None:
    await app.store.append(match("hex8_4p", {"random": 4, "heuristic": 3, "x": 1, "y": 1}, "mp1"))
    [update] = await rated(app, "hex8_4p", 1)
    changes = {c.participant_id: c for c in update.changes}
    assert changes["random"].before == changes["random"].after == 400.0
    assert changes["heuristic"].after == 1200.0
    assert changes["x"].after == changes["y"].after > 1500.0


async def test_rebuild_equals_live_and_time_travel(
    app: App, rater: HandlerRuntime, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    batch = random_matches("square19_3p", 60, ["p1", "p2", "p3", "p4", "random"], seed=7, seats=3)
    await app.store.append_many(batch)
    updates = await rated(app, "square19_3p", 60)
    assert_chain_consistent(updates)

    live = app.projection_runner("elo")
    await app.refresh("elo")
    [rebuilt] = await rebuild(app, ["elo"], tmp_path / "rebuilt.db")
    assert rebuilt.position == live.position
    assert rebuilt.state.snapshot() == live.state.snapshot()
    assert await check(app, ["elo"]) == []

    # time travel: the state as of the 30th rating update equals the fold of the prefix
    stored = await app.store.read_all(LOG_STREAM, "loop.>")
    cut = [s for s in stored if s.subject == "loop.elo.updated.square19_3p"][29].seq
    [past] = await rebuild(app, ["elo"], tmp_path / "past.db", until_seq=cut)
    expected = fold(EloProjection(), [s for s in stored if s.seq <= cut])
    assert past.position == cut
    assert past.state.snapshot() == expected.snapshot()
    assert past.state.snapshot() != live.state.snapshot()


async def test_replay_check_reports_a_tampered_read_model(app: App, rater: HandlerRuntime) -> None:
    await app.refresh("elo")
    db = open_db(app.settings.projections_db)
    position, _ = live_state(app.settings.projections_db, "elo")
    assert position > 0
    db.execute("update elo_ratings set elo = elo + 1 where config = 'square8_2p'")
    db.conn.commit()
    problems = await check(app, ["elo"])
    assert problems and "elo_ratings" in problems[0]
    db.execute("update elo_ratings set elo = elo - 1 where config = 'square8_2p'")
    db.conn.commit()
    assert await check(app, ["elo"]) == []


async def test_malformed_event_is_dead_lettered_and_projections_stay_intact(
    app: App, rater: HandlerRuntime
) -> None:
    await app.refresh("elo")
    before = app.runners["elo"].state.snapshot()
    ack = await app.store.js.publish(
        "loop.match.completed.square8_2p", b'{"type": "match.completed", "oops": 1}'
    )

    async def dead_letters() -> list[HandlerFailed]:
        while True:
            stored = await app.store.read_all(LOG_STREAM, "loop.dlq.elo-rater")
            found = [s.event for s in stored if s.event.input_seq == ack.seq]  # type: ignore[attr-defined]
            if found:
                return found  # type: ignore[return-value]
            await asyncio.sleep(0.05)

    [failed] = await asyncio.wait_for(dead_letters(), 10)
    assert failed.error_type == "EventDecodeError" and "oops" in failed.error
    assert failed.input_subject == "loop.match.completed.square8_2p"
    await app.refresh("elo")
    runner = app.runners["elo"]
    assert runner.position >= ack.seq
    assert runner.state.snapshot() == before
    skipped = list(runner.db.query("select seq, error from _skipped where projection = 'elo'"))
    assert [row["seq"] for row in skipped] == [ack.seq] and "oops" in skipped[0]["error"]
    raw = await app.store.get(LOG_STREAM, ack.seq)
    assert b"oops" in raw.data  # the stream lost nothing


async def test_two_concurrent_raters_on_one_config_never_interleave(app: App) -> None:
    """Two rater runtimes share one durable consumer, each with its own read model."""
    from dataclasses import replace

    from handlers import elo_rater

    spec = replace(app.handler_spec("elo-rater"), batch=1)
    first = HandlerRuntime(spec, app.store)
    second_view = ProjectionRunner(EloProjection(), app.store, open_db(":memory:"))
    second_view.start()

    async def refresh_second() -> None:
        await second_view.wait_for(await app.store.last_seq(LOG_STREAM), 30)

    second = HandlerRuntime(
        replace(
            spec,
            handle=lambda e: elo_rater.on_match_completed(
                e, elo=second_view.state, producer=first.producer
            ),
            refresh=refresh_second,
        ),
        app.store,
    )
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    batch = random_matches("hexagonal_2p", 80, ["a", "b", "c", "d"], seed=11)
    await app.store.append_many(batch)
    updates = await rated(app, "hexagonal_2p", 80, timeout=60)
    first.stop()
    second.stop()
    await asyncio.gather(*tasks)
    await second_view.stop()
    assert len(updates) == 80
    assert first.processed > 0 and second.processed > 0
    assert sorted(u.match_id for u in updates) == sorted(m.match_id for m in batch)
    assert_chain_consistent(updates)
