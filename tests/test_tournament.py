"""Tournaments on a real nats-server: work items shared by evaluator workers, rated results, crosstable."""

from __future__ import annotations

import asyncio

import pytest

from events import LOG_STREAM, EloUpdated, Producer
from events.catalogue import SeatSpec
from handlers import tournament
from handlers.evaluator import EvaluatorDeps
from handlers.play_common import play_settings
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.tournament import crosstable, run_tournament, schedule
from tests.test_play_stages import supervised

TINY = play_settings({"preset": "tiny"})


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
    with pytest.raises(ValueError, match="neither a tier"):
        asyncio.run(_resolve_unknown())


async def _resolve_unknown() -> None:
    from ops.tournament import resolve

    class NoStore:
        js = None

        async def read(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            return
            yield

    await resolve(NoStore(), "square8_2p", ["random", "nobody"], TINY)  # type: ignore[arg-type]


async def test_two_workers_share_the_games_and_results_are_rated(app: App) -> None:
    deps = EvaluatorDeps(app.store, TINY, app.settings.state_dir, Producer.current("evaluator"))
    stop = asyncio.Event()
    workers = [asyncio.create_task(tournament.serve(deps, stop, batch=2)) for _ in range(2)]
    rater = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    rating = asyncio.create_task(supervised(rater))
    try:
        outcome = await run_tournament(
            deps, "square8_2p", ["random", "heuristic"], games=4, timeout=60
        )
    finally:
        stop.set()
        played = await asyncio.gather(*workers)
    assert sum(played) == 4 and len(outcome.matches) == 4
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
