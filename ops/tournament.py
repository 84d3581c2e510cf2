"""Tournaments: resolve participants, publish their games as work items, wait for the MatchCompleted results, print a crosstable.

Participants are tiers (random, heuristic, mcts-<N>, d1-d5) or registered models (by model id, or
``best`` for the config's current best). Games go to the work-queue stream that every
`ringloop run evaluator` process serves (handlers.tournament); ``local=True`` also serves
them in this process. Results are ordinary MatchCompleted events (context "tournament"),
so the elo-rater rates them like any other match.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engine import GameConfig
from engine.stats import wilson_interval
from events import LOG_STREAM, MatchCompleted, Producer, derive_event_id
from events.catalogue import EvalGameRequested, SeatSpec
from handlers import tournament
from handlers.evaluator import FILLER_TIERS, EvaluatorDeps
from handlers.play_common import PlaySettings, best_model, registered_model, tier_agent
from handlers.tournament import tournament_seed
from projections.eventstore import EventStore

Format = Literal["round-robin", "gauntlet"]


async def resolve(
    store: EventStore, config: str, names: Sequence[str], settings: PlaySettings
) -> list[SeatSpec]:
    """Seat specs for participant names; unknown names fail with the name quoted."""
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"a tournament needs at least two distinct participants, got {names!r}")
    seats = []
    for name in names:
        try:
            tier_agent(name, settings)
        except ValueError:
            model = await (
                best_model(store, config)
                if name == "best"
                else registered_model(store, config, name)
            )
            if model is None or model.artifact is None:
                raise ValueError(
                    f"participant {name!r} is neither a tier (random, heuristic, mcts-<N>, d1-d5) nor "
                    f"a registered {config} model with weights"
                ) from None
            seats.append(
                SeatSpec(participant_id=model.model_id, kind="model", artifact=model.artifact)
            )
        else:
            seats.append(SeatSpec(participant_id=name, kind="tier"))
    return seats


def pairings(seats: Sequence[SeatSpec], players: int, fmt: Format) -> list[list[SeatSpec]]:
    """The groups that meet: every pair (or n-tuple) in a round robin; the first vs the rest in a gauntlet."""
    size = min(players, len(seats))
    if fmt == "gauntlet":
        head, rest = seats[0], seats[1:]
        groups = [[head, *other] for other in itertools.combinations(rest, size - 1)]
    else:
        groups = [list(group) for group in itertools.combinations(seats, size)]
    taken = {s.participant_id for s in seats}
    fill = [SeatSpec(participant_id=t, kind="tier") for t in FILLER_TIERS if t not in taken]
    return [group + fill[: players - len(group)] for group in groups]


def schedule(
    tournament_id: str,
    config: str,
    seats: Sequence[SeatSpec],
    fmt: Format,
    games_per_group: int,
) -> list[EvalGameRequested]:
    """Work items: each group plays ``games_per_group`` games, seats rotating."""
    players = GameConfig.parse(config).num_players
    items: list[EvalGameRequested] = []
    root = str(uuid.uuid4())
    for group in pairings(seats, players, fmt):
        for game in range(games_per_group):
            index = len(items)
            order = [group[(game + s) % players] for s in range(players)]
            items.append(
                EvalGameRequested(
                    event_id=derive_event_id(root, f"item:{index}"),
                    correlation_id=tournament_id,
                    producer=Producer.current("tournament"),
                    config=config,
                    tournament_id=tournament_id,
                    game_index=index,
                    seats=order,
                    seed=tournament_seed(tournament_id, index),
                )
            )
    return items


async def wait_for_matches(
    store: EventStore, config: str, tournament_id: str, count: int, start_seq: int, timeout: float
) -> list[MatchCompleted]:
    """The tournament's MatchCompleted results, once ``count`` have arrived."""

    async def poll() -> list[MatchCompleted]:
        while True:
            stored = await store.read_all(
                LOG_STREAM, f"loop.match.completed.{config}", start_seq=start_seq
            )
            found = {
                s.event.match_id: s.event
                for s in stored
                if isinstance(s.event, MatchCompleted) and s.event.context_id == tournament_id
            }
            if len(found) >= count:
                return list(found.values())
            await asyncio.sleep(0.25)

    return await asyncio.wait_for(poll(), timeout)


@dataclass(frozen=True)
class Outcome:
    tournament_id: str
    participants: list[str]
    matches: list[MatchCompleted]


async def run_tournament(
    deps: EvaluatorDeps,
    config: str,
    names: Sequence[str],
    *,
    fmt: Format = "round-robin",
    games: int = 2,
    local: bool = False,
    timeout: float = 3600.0,
) -> Outcome:
    """Publish the games, wait for every result (serving them here too when ``local``)."""
    seats = await resolve(deps.store, config, names, deps.settings)
    tournament_id = f"t-{uuid.uuid4().hex[:12]}"
    items = schedule(tournament_id, config, seats, fmt, games)
    start = await deps.store.last_seq(LOG_STREAM) + 1
    await tournament.publish(deps.store, items)
    stop = asyncio.Event()
    server = asyncio.create_task(tournament.serve(deps, stop)) if local else None
    try:
        matches = await wait_for_matches(
            deps.store, config, tournament_id, len(items), start, timeout
        )
    finally:
        stop.set()
        if server is not None:
            await server
    return Outcome(tournament_id, [s.participant_id for s in seats], matches)


def crosstable(outcome: Outcome, confidence: float = 0.95) -> str:
    """Scores of each participant against each other one, totals and Wilson intervals."""
    scores = tournament.results_of(outcome.matches)
    names = outcome.participants
    width = max(len(n) for n in names) + 2
    header = "".join(f"{n[:10]:>12}" for n in names)
    lines = [f"{'':{width}}{header}{'score':>10}{'games':>7}   wilson {int(confidence * 100)}%"]
    for a in names:
        cells, total, played = [], 0.0, 0
        for b in names:
            got = scores.get((a, b), [])
            cells.append(f"{'-' if a == b else f'{sum(got):g}/{len(got)}':>12}")
            total, played = total + sum(got), played + len(got)
        low, high = wilson_interval(total, played, confidence) if played else (0.0, 1.0)
        share = total / played if played else 0.0
        lines.append(
            f"{a:{width}}{''.join(cells)}{share:>10.3f}{played:>7}   [{low:.3f}, {high:.3f}]"
        )
    return "\n".join(lines)
