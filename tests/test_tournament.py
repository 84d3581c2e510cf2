"""Tournaments on a real nats-server: work items shared by evaluator workers, rated results, crosstable."""

from __future__ import annotations

import asyncio

import pytest

from events import LOG_STREAM, EloUpdated
from events.catalogue import SeatSpec
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.tournament import crosstable, resolve, run_tournament, schedule
from projections.registry import RegistryProjection


def tiers(*names: str) -> list[SeatSpec]:
    return [SeatSpec(participant_id=n, kind="tier") for n in names]


def test_schedule_rotates_seats_and_fills_multiplayer_games() -> None:
    items = schedule("t-1", "square8_2p", tiers("random", "heuristic", "mcts-4"), "round-robin", 2)
    assert len(items) == 6 and len({i.event_id for i in items}) == 6
    assert [s.participant_id for s in items[0].seats] == ["random", "heuristic"]
    assert [s.participant_id for s in items[1].seats] == ["heuristic", "random"]
    gauntlet = schedule("t-2", "square8_3p", tiers("mcts-4", "random"), "gauntlet", 3)
    assert len(gauntlet) == 3
    assert {s.participant_id for s in gauntlet[0].seats} == {"mcts-4", "random", "heuristic"}
    with pytest.raises(ValueError, match="'nobody' is neither a tier"):
        resolve(RegistryProjection().initial(), "square8_2p", ["random", "nobody"])


async def test_two_workers_share_the_games_and_results_are_rated(app: App) -> None:
    from dataclasses import replace

    workers = [  # two evaluator processes' consumers of the work queue, two games a fetch
        HandlerRuntime(replace(app.stage("evaluator").specs()[0], batch=2), app.store)
        for _ in range(2)
    ]
    working = [asyncio.create_task(w.run()) for w in workers]
    rater = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    rating = asyncio.create_task(rater.run())
    try:
        outcome = await run_tournament(
            app, "square8_2p", ["random", "heuristic"], games=4, timeout=60
        )
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*working)
    assert sum(w.processed for w in workers) == 4 and len(outcome.matches) == 4
    assert {m.context for m in outcome.matches} == {"tournament"}
    assert {m.game_id for m in outcome.matches} == {
        f"{outcome.tournament_id}:{i}" for i in range(4)
    }
    table = crosstable(outcome)
    assert "random" in table and "heuristic" in table and "/4" in table

    async def rated() -> list[EloUpdated]:
        while True:
            stored = await app.store.read_all(LOG_STREAM, "loop.elo.updated.square8_2p")
            ids = {m.match_id for m in outcome.matches}
            found = [s.event for s in stored if s.event.match_id in ids]  # type: ignore[attr-defined]
            if len(found) == 4:
                return found  # type: ignore[return-value]
            await asyncio.sleep(0.05)

    assert len(await asyncio.wait_for(rated(), 20)) == 4
    rater.stop()
    await rating
