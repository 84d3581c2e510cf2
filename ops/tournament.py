"""Tournaments: resolve participants, publish their games as work items, wait for the MatchCompleted results, print a crosstable.

Participants are tiers (random, heuristic, mcts-<N>, d1-d5), registered models (by model id, or
``best`` for the config's current best), looked up in the registry read model, or any service
speaking RingRift's AI-service contract (``http://host:port/?difficulty=5``, handlers.service_player). Games go to
the work-queue stream that every `ringloop run evaluator` process serves
(handlers.evaluator, the same path as gating games); ``local=True`` also runs an evaluator
in this process. Results are ordinary MatchCompleted events (context "tournament"), so the
elo-rater rates them like any other match.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine import GameConfig
from engine.stats import wilson_interval
from events import LOG_STREAM, MatchCompleted, Producer, derive_event_id
from events.catalogue import EvalGameRequested, SeatSpec
from handlers.gating import FILLER_TIERS
from handlers.models import best_model, registered_model
from handlers.service_player import is_service_url, parse_service_url
from handlers.settings import TIER_PATTERN
from projections.eventstore import EventStore
from projections.tables import Tables

if TYPE_CHECKING:
    from ops.app import App

Format = Literal["round-robin", "gauntlet"]


def tournament_seed(tournament_id: str, index: int) -> int:
    return random.Random(f"{tournament_id}:{index}").getrandbits(62)


def resolve(registry: Tables, config: str, names: Sequence[str]) -> list[SeatSpec]:
    """Seat specs for participant names; unknown names fail with the name quoted."""
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"a tournament needs at least two distinct participants, got {names!r}")
    seats = []
    for name in names:
        if is_service_url(name):
            address = parse_service_url(name)
            seats.append(
                SeatSpec(participant_id=address.participant_id, kind="service",
                         url=address.participant_id)
            )  # fmt: skip
        elif not re.fullmatch(TIER_PATTERN, name.lower()):
            model = (
                best_model(registry, config) if name == "best" else registered_model(registry, name)
            )
            if model is None or model.artifact is None or model.config != config:
                raise ValueError(
                    f"participant {name!r} is neither a tier (random, heuristic, mcts-<N>, d1-d5), "
                    f"a registered {config} model with weights, nor a service URL "
                    "(http://host:port/?difficulty=N)"
                ) from None
            seats.append(
                SeatSpec(participant_id=model.model_id, kind="model", artifact=model.artifact)
            )
        else:
            seats.append(SeatSpec(participant_id=name.lower(), kind="tier"))
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
    app: App,
    config: str,
    names: Sequence[str],
    *,
    fmt: Format = "round-robin",
    games: int = 2,
    local: bool = False,
    timeout: float = 3600.0,
) -> Outcome:
    """Publish the games, wait for every result (an evaluator in this process when ``local``)."""
    from ops.wiring import run_stages

    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    seats = resolve(app.runners["registry"].state, config, names)
    tournament_id = f"t-{uuid.uuid4().hex[:12]}"
    items = schedule(tournament_id, config, seats, fmt, games)
    start = await app.store.last_seq(LOG_STREAM) + 1
    await app.store.append_many(items)
    stop = asyncio.Event()
    server = (
        asyncio.create_task(run_stages(app, ["evaluator"], stop, views_db=":memory:"))
        if local
        else None
    )
    try:
        matches = await wait_for_matches(
            app.store, config, tournament_id, len(items), start, timeout
        )
    finally:
        stop.set()
        if server is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await server
    return Outcome(tournament_id, [s.participant_id for s in seats], matches)


def results_of(matches: list[MatchCompleted]) -> dict[tuple[str, str], list[float]]:
    """Pairwise scores: (a, b) -> a's scores against b (1 above, 0.5 level, 0 below)."""
    out: dict[tuple[str, str], list[float]] = {}
    for match in matches:
        for a in match.participants:
            for b in match.participants:
                if a.participant_id == b.participant_id:
                    continue
                score = 0.5 if a.rank == b.rank else float(a.rank < b.rank)
                out.setdefault((a.participant_id, b.participant_id), []).append(score)
    return out


def crosstable(outcome: Outcome, confidence: float = 0.95) -> str:
    """Scores of each participant against each other one, totals and Wilson intervals."""
    scores = results_of(outcome.matches)
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
