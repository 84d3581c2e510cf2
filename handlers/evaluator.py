"""Consumes EvalGameRequested work items (gating and tournament games, RINGLOOP_WORK); plays each
fetched batch in lock-step; emits GameCompleted (eval) and MatchCompleted per game.

Any number of evaluators share the work queue: each item goes to one of them and is
redelivered if that process dies, and its events carry ids derived from the item, so a game
redone after a crash is appended once. A gating item whose gate is already decided is
withdrawn (acknowledged unplayed); one whose gate this process does not know yet waits (its
EvaluationStarted is appended with the items and is still on its way to the read model).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine import GameConfig
from events import EvalGameRequested, Event, Producer, SeatSpec
from handlers.agents import Agent, model_agent, search_settings, tier_agent
from handlers.games import Cancelled, game_events, play_games
from handlers.models import ModelRef, checkpoint_cache, load_network
from handlers.runtime import Consumer, Interrupted, Outcome, TransientError, batched
from handlers.service_player import ServicePlayer, parse_service_url
from handlers.settings import LoopSettings
from projections.eventstore import EventStore
from projections.gating import gate, is_open
from projections.tables import Tables

if TYPE_CHECKING:
    from engine.players.neural import NetworkEvaluator

NAME = "evaluator"


def consumer(settings: LoopSettings) -> Consumer:
    """A fetch is a batch of games played in lock-step."""
    return Consumer(batch=settings.evaluation.games_per_batch, ack_wait=settings.tasks.ack_wait_s,
                    max_deliver=10, nak_delays=(0.5, 2.0, 5.0, 10.0))  # fmt: skip


class GateNotKnownYet(TransientError):
    """A gating item arrived before its EvaluationStarted reached this read model."""


@dataclass
class Seats:
    """Agents for seat specs, loading each model's network once per process (by sha256)."""

    store: EventStore
    state_dir: Path
    settings: LoopSettings
    halt: threading.Event = field(default_factory=threading.Event)  # set: abandon the games
    networks: dict[str, NetworkEvaluator] = field(default_factory=dict)
    services: dict[str, ServicePlayer] = field(default_factory=dict)

    async def agent(self, config: str, seat: SeatSpec) -> Agent:
        if seat.kind == "tier":
            return tier_agent(seat.participant_id, self.settings)
        if seat.kind == "service":
            url = seat.url or seat.participant_id
            if url not in self.services:
                self.services[url] = ServicePlayer(parse_service_url(url))
            return Agent(seat.participant_id, player=self.services[url])
        if seat.artifact is None:
            raise ValueError(f"model seat {seat.participant_id!r} has no artifact")
        sha = seat.artifact.sha256
        if sha not in self.networks:
            ref = ModelRef(config, seat.participant_id, seat.artifact)
            self.networks[sha], _ = await load_network(
                self.store, ref, checkpoint_cache(self.state_dir)
            )
        search = search_settings(self.settings, "evaluation")
        return model_agent(seat.participant_id, self.networks[sha], search, sha256=sha)


@batched
async def on_eval_game_requested(
    events: list[Event], *, gating: Tables, seats: Seats, producer: Producer
) -> list[Outcome]:
    """Play the fetched items (those of one config together); one outcome per item."""
    outcomes: list[Outcome] = [None] * len(events)
    playable: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        if not isinstance(event, EvalGameRequested):
            continue
        if event.context == "evaluation":
            if gate(gating, event.tournament_id) is None:
                outcomes[index] = GateNotKnownYet(f"gate {event.tournament_id!r} not folded yet")
                continue
            if not is_open(gating, event.tournament_id):
                continue  # withdrawn: the gate was decided without this game
        playable.setdefault(event.config, []).append(index)
    for indices in playable.values():
        items = [events[i] for i in indices]
        for i, result in zip(indices, await _play(items, seats, producer), strict=True):  # type: ignore[arg-type]
            outcomes[i] = result
    return outcomes


async def _play(items: list[EvalGameRequested], seats: Seats, producer: Producer) -> list[Outcome]:
    try:
        seatings = [[await seats.agent(i.config, s) for s in i.seats] for i in items]
    except ValueError as exc:
        return [exc] * len(items)
    selfplay = seats.settings.selfplay
    try:
        played = await asyncio.to_thread(
            play_games,
            GameConfig.parse(items[0].config),
            seatings,
            [i.seed for i in items],
            max_moves=selfplay.max_moves,
            adjudication=selfplay.adjudication,
            stop=seats.halt,
        )
    except Cancelled as exc:  # the process is stopping: redelivered, games deduplicated
        return [Interrupted(f"evaluation games abandoned: {exc}")] * len(items)
    return [
        game_events(item, [game], prefix=item.tournament_id, first_index=item.game_index,
                    context=item.context, context_id=item.tournament_id, producer=producer)
        for item, game in zip(items, played, strict=True)
    ]  # fmt: skip
