"""Consumes EvalGameRequested work items (work.eval.<config>); plays them in lock-step batches; emits GameCompleted (eval) and MatchCompleted (context "tournament").

A tournament game is a command, not a fact of the loop, so it does not go into the log:
it goes into the work-queue stream RINGLOOP_WORK (events.streams.WORK_STREAM, created by
ops.bus.ensure_streams), each item delivered to one of any number of `ringloop run
evaluator` processes and redelivered if that process dies. Results flow through the
ordinary MatchCompleted -> elo-rater path.
"""

from __future__ import annotations

import asyncio
import random

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from engine import GameConfig
from events import WORK_STREAM, Event, MatchCompleted
from events.catalogue import EvalGameRequested, SeatSpec
from handlers.evaluator import EvaluatorDeps, game_events
from handlers.play_common import (
    Agent,
    ModelRef,
    NetworkEvaluator,
    checkpoint_cache,
    load_network,
    model_agent,
    play_games,
    tier_agent,
)
from projections.eventstore import EventStore

WORK_CONSUMER = "evaluator-work"

log = structlog.get_logger(__name__)


async def publish(store: EventStore, items: list[EvalGameRequested]) -> None:
    """Publish work items to RINGLOOP_WORK, deduplicated by their (deterministic) event ids."""
    await store.append_many(items)


# ---------------------------------------------------------------- the worker


class _Agents:
    """Agents for seat specs, loading each model's network once per process."""

    def __init__(self, deps: EvaluatorDeps) -> None:
        self.deps = deps
        self.networks: dict[str, NetworkEvaluator] = {}

    async def agent(self, config: str, seat: SeatSpec) -> Agent:
        if seat.kind == "tier":
            return tier_agent(seat.participant_id, self.deps.settings)
        if seat.artifact is None:
            raise ValueError(f"model seat {seat.participant_id!r} has no artifact")
        sha = seat.artifact.sha256
        if sha not in self.networks:
            ref = ModelRef(config, seat.participant_id, seat.artifact)
            cache = checkpoint_cache(self.deps.state_dir)
            self.networks[sha], _ = await load_network(self.deps.store, ref, cache)
        return model_agent(
            seat.participant_id, self.networks[sha], self.deps.settings, selfplay=False, sha256=sha
        )


async def play_items(
    deps: EvaluatorDeps, agents: _Agents, items: list[EvalGameRequested]
) -> list[Event]:
    """Play work items of one config together; returns GameCompleted + MatchCompleted each."""
    config = GameConfig.parse(items[0].config)
    seatings = [[await agents.agent(i.config, s) for s in i.seats] for i in items]
    played = await asyncio.to_thread(
        play_games, config, seatings, [i.seed for i in items], deps.settings
    )
    out: list[Event] = []
    for item, game in zip(items, played, strict=True):
        out += game_events(
            item,
            [game],
            prefix=item.tournament_id,
            first_index=item.game_index,
            context="tournament",
            context_id=item.tournament_id,
            producer=deps.producer,
        )
    return out


async def serve(deps: EvaluatorDeps, stop: asyncio.Event, *, batch: int | None = None) -> int:
    """Take work items until ``stop``; each fetched batch is played in lock-step. Returns games."""
    js = deps.store.js
    await _ensure_consumer(js, deps.settings.ack_wait_s)
    sub = await js.pull_subscribe_bind(durable=WORK_CONSUMER, stream=WORK_STREAM)
    agents, played = _Agents(deps), 0
    size = batch or deps.settings.parallel_games
    try:
        while not stop.is_set():
            try:
                messages = await sub.fetch(size, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            played += await _process(deps, agents, messages)
    finally:
        await sub.unsubscribe()
    return played


async def _process(deps: EvaluatorDeps, agents: _Agents, messages: list[Msg]) -> int:
    items: dict[str, list[tuple[Msg, EvalGameRequested]]] = {}
    for msg in messages:
        try:
            item = EvalGameRequested.model_validate_json(msg.data)
        except ValueError as exc:
            log.warning("work_item_rejected", error=str(exc)[:300], data=msg.data[:200])
            await msg.term()
            continue
        items.setdefault(item.config, []).append((msg, item))
    done = 0
    for group in items.values():
        heartbeat = asyncio.create_task(_heartbeat([m for m, _ in group], deps.settings.ack_wait_s))
        try:
            events = await play_items(deps, agents, [i for _, i in group])
            await deps.store.append_many(events)
        except (ValueError, NotFoundError) as exc:
            log.warning("work_item_failed", error=repr(exc)[:300])
            for msg, _ in group:
                await msg.term()
            continue
        finally:
            heartbeat.cancel()
        for msg, _ in group:
            await msg.ack_sync()
        done += len(group)
    return done


async def _heartbeat(messages: list[Msg], ack_wait: float) -> None:
    while True:
        await asyncio.sleep(max(ack_wait / 3, 0.2))
        for msg in messages:
            try:
                await msg.in_progress()
            except nats.errors.Error as exc:
                log.debug("in_progress_ignored", error=repr(exc))


async def _ensure_consumer(js: JetStreamContext, ack_wait: float) -> None:
    try:
        await js.consumer_info(WORK_STREAM, WORK_CONSUMER)
    except NotFoundError:
        await js.add_consumer(
            WORK_STREAM,
            ConsumerConfig(
                durable_name=WORK_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait,
                max_deliver=5,
                filter_subject="work.eval.>",
            ),
        )


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


def tournament_seed(tournament_id: str, index: int) -> int:
    return random.Random(f"{tournament_id}:{index}").getrandbits(62)
