"""Consumes TrainingCompleted; plays the gating match against the best model and the baselines; emits EvaluationStarted, GameCompleted (eval) and MatchCompleted per game, then EvaluationCompleted.

The candidate plays at selfplay's search budget without root noise (the first
``eval_temperature_moves`` moves are sampled by visits, so games differ). Each opponent
gets rounds of ``eval_round`` games, seats rotating; the rounds of all opponents are played
together in lock-step (the candidate's network leaves batched across every game), and an
SPRT (engine.stats) after every round stops an opponent early once decided. Multiplayer configs fill the extra seats with baselines; a game counts as a
win against the opponent when the candidate finishes ranked above it.

The gating match holds an "evaluation" slot of the cluster (handlers.coordinator, limit
LoopSettings.tasks.evaluation): refused, the TrainingCompleted is nak'ed and retried later;
once its lease is lost, no further games or summary are published (redelivered, redone).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from engine import GameConfig
from engine.stats import sprt, wilson_interval
from events import (
    LOG_STREAM,
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    GameCompleted,
    MatchCompleted,
    MatchParticipant,
    OpponentResult,
    Producer,
    TrainingCompleted,
    derive_event_id,
)
from handlers.coordinator import KeptLease, TaskCoordinator
from handlers.play_common import (
    Agent,
    Cancelled,
    ModelRef,
    PlayedGame,
    PlaySettings,
    best_model,
    checkpoint_cache,
    ensure_held,
    load_network,
    model_agent,
    play_games,
    rotated_seatings,
    task_slot,
    tier_agent,
)
from handlers.runtime import Interrupted
from handlers.selfplay import game_completed
from projections.eventstore import EventStore

NAME = "evaluator"
FILLER_TIERS = ("heuristic", "random", "mcts-16", "mcts-32")

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------- pure pieces


def fillers(config: GameConfig, present: Sequence[str], settings: PlaySettings) -> list[Agent]:
    """Baseline agents for the seats a head-to-head leaves empty (distinct participants)."""
    free = [t for t in FILLER_TIERS if t not in present]
    return [tier_agent(t, settings) for t in free[: config.num_players - len(present)]]


def pair_score(game: PlayedGame, candidate: str, opponent: str) -> float:
    """1 if the candidate finished above the opponent, 0.5 level, 0 below."""
    ranks = {a.participant_id: r for a, r in zip(game.seats, game.ranking, strict=True)}
    if ranks[candidate] == ranks[opponent]:
        return 0.5
    return 1.0 if ranks[candidate] < ranks[opponent] else 0.0


def seed_for(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:15], 16)


@dataclass
class Tally:
    """Results against one opponent so far."""

    opponent: str
    wins: int = 0
    draws: int = 0
    losses: int = 0
    stopped_early: bool = False

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    def add(self, score: float) -> None:
        if score == 1.0:
            self.wins += 1
        elif score == 0.0:
            self.losses += 1
        else:
            self.draws += 1

    def result(self, settings: PlaySettings) -> OpponentResult:
        points = self.wins + 0.5 * self.draws
        low, high = wilson_interval(points, self.games, settings.confidence)
        test = sprt(
            self.wins,
            self.draws,
            self.losses,
            elo0=settings.sprt_elo0,
            elo1=settings.sprt_elo1,
            alpha=settings.sprt_alpha,
            beta=settings.sprt_beta,
        )
        return OpponentResult(
            opponent=self.opponent,
            games=self.games,
            wins=self.wins,
            losses=self.losses,
            draws=self.draws,
            score=points / self.games if self.games else 0.0,
            wilson_low=low,
            wilson_high=high,
            sprt=test.decision,
            llr=test.llr,
        )


def match_completed(
    cause: Event,
    record: GameCompleted,
    played: PlayedGame,
    *,
    match_id: str,
    context: str,
    context_id: str,
    producer: Producer,
    tag: str,
) -> MatchCompleted:
    """The rated result of one game; model participants carry sha256 and config."""
    participants = [
        MatchParticipant(
            participant_id=agent.participant_id,
            rank=rank,
            seat=seat,
            model_sha256=agent.model_sha256,
            config=record.config if agent.model_sha256 else None,
        )
        for seat, (agent, rank) in enumerate(zip(played.seats, played.ranking, strict=True), 1)
    ]
    return cause.caused(
        MatchCompleted,
        tag,
        producer=producer,
        config=record.config,
        match_id=match_id,
        participants=participants,
        game_id=record.game_id,
        game_subject=record.subject(),
        context=context,
        context_id=context_id,
    )


def game_events(
    cause: Event,
    played: Sequence[PlayedGame],
    *,
    prefix: str,
    first_index: int,
    context: str,
    context_id: str,
    producer: Producer,
    generation: int = 0,
) -> list[Event]:
    """GameCompleted (purpose eval) then MatchCompleted for each game, ids derived from ``cause``."""
    out: list[Event] = []
    for index, game in enumerate(played, first_index):
        game_id = f"{prefix}:{index}"
        record = game_completed(
            game,
            purpose="eval",
            game_id=game_id,
            producer=producer,
            generation=generation,
            event_id=derive_event_id(cause.event_id, f"game:{game_id}"),
            causation_id=cause.event_id,
            correlation_id=cause.correlation_id or cause.event_id,
        )
        match = match_completed(
            cause,
            record,
            game,
            match_id=game_id,
            context=context,
            context_id=context_id,
            producer=producer,
            tag=f"match:{game_id}",
        )
        out += [record, match]
    return out


# ---------------------------------------------------------------- the handler


@dataclass(frozen=True)
class EvaluatorDeps:
    store: EventStore
    settings: PlaySettings
    state_dir: Path
    producer: Producer
    halt: threading.Event = field(default_factory=threading.Event)  # set: abandon the games
    tasks: TaskCoordinator | None = None  # the cluster's evaluation limit (None: unbounded)


async def on_training_completed(event: Event, deps: EvaluatorDeps) -> list[Event] | None:
    """Gate a new model holding an evaluation slot; refused (SlotBusy) or lost (SlotLost),
    the TrainingCompleted is retried later."""
    if not isinstance(event, TrainingCompleted):
        return None
    evaluation_id = f"eval-{event.training_id}"
    if await _already_evaluated(deps.store, event.config, evaluation_id):
        return None
    async with task_slot(deps.tasks, "evaluation", evaluation_id) as kept:
        summary = await _evaluate(event, evaluation_id, deps, kept)
        await ensure_held(kept, f"evaluation {evaluation_id!r}")
    return [summary]


async def _evaluate(
    event: TrainingCompleted, evaluation_id: str, deps: EvaluatorDeps, kept: KeptLease | None
) -> EvaluationCompleted:
    """Head-to-heads against the best and the baselines, then the summary."""
    cache = checkpoint_cache(deps.state_dir)
    candidate_ref = ModelRef(event.config, event.model_id, event.artifact, event.generation)
    network, sha = await load_network(deps.store, candidate_ref, cache)
    candidate = model_agent(event.model_id, network, deps.settings, selfplay=False, sha256=sha)
    opponents = await _opponents(deps, event)
    await deps.store.append(
        event.caused(
            EvaluationStarted,
            "evaluation-started",
            producer=deps.producer,
            config=event.config,
            evaluation_id=evaluation_id,
            candidate=event.model_id,
            opponents=[o.participant_id for o in opponents],
        )
    )
    matches = head_to_heads(GameConfig.parse(event.config), candidate, opponents, deps.settings)
    await _gating_rounds(event, evaluation_id, candidate, matches, deps, kept)
    log.info("evaluation_completed", config=event.config, candidate=event.model_id)
    return event.caused(
        EvaluationCompleted,
        "evaluation-completed",
        producer=deps.producer,
        config=event.config,
        evaluation_id=evaluation_id,
        candidate=event.model_id,
        results=[m.tally.result(deps.settings) for m in matches],
        decided_early=any(m.tally.stopped_early for m in matches),
    )


async def _opponents(deps: EvaluatorDeps, event: TrainingCompleted) -> list[Agent]:
    agents = [tier_agent(name, deps.settings) for name in deps.settings.eval_baselines]
    best = await best_model(deps.store, event.config)
    if best is not None and best.artifact is not None and best.model_id != event.model_id:
        network, sha = await load_network(deps.store, best, checkpoint_cache(deps.state_dir))
        agents.insert(
            0, model_agent(best.model_id, network, deps.settings, selfplay=False, sha256=sha)
        )
    return agents


@dataclass
class HeadToHead:
    """One opponent of the gating match: its lineup, budget and results so far."""

    opponent: Agent
    lineup: list[Agent]
    budget: int
    tally: Tally

    @property
    def open(self) -> bool:
        return self.tally.games < self.budget and not self.tally.stopped_early

    def next_round(self, settings: PlaySettings) -> list[list[Agent]]:
        count = min(settings.eval_round, self.budget - self.tally.games)
        games = self.tally.games
        return rotated_seatings(self.lineup, games + count)[games:]


def head_to_heads(
    config: GameConfig, candidate: Agent, opponents: Sequence[Agent], settings: PlaySettings
) -> list[HeadToHead]:
    matches = []
    for opponent in opponents:
        present = [candidate.participant_id, opponent.participant_id]
        budget = settings.eval_games if opponent.model_sha256 else settings.baseline_games
        lineup = [candidate, opponent, *fillers(config, present, settings)]
        matches.append(HeadToHead(opponent, lineup, budget, Tally(opponent.participant_id)))
    return matches


async def _gating_rounds(
    event: TrainingCompleted,
    evaluation_id: str,
    candidate: Agent,
    matches: list[HeadToHead],
    deps: EvaluatorDeps,
    kept: KeptLease | None = None,
) -> None:
    """Rounds until every head-to-head is decided by its SPRT or has spent its budget.

    A round plays the next games of every open head-to-head together, so the candidate's
    network evaluates the leaves of all of them in shared batches.
    """
    settings, config = deps.settings, GameConfig.parse(event.config)
    while active := [m for m in matches if m.open]:
        rounds = [(m, m.next_round(settings)) for m in active]
        seatings = [seats for _, round_ in rounds for seats in round_]
        seeds = [
            seed_for(evaluation_id, m.opponent.participant_id, m.tally.games + i)
            for m, round_ in rounds
            for i in range(len(round_))
        ]
        try:
            finished = await asyncio.to_thread(
                play_games, config, seatings, seeds, settings, stop=deps.halt
            )
        except Cancelled as exc:  # the process is stopping: redelivered, games deduplicated
            raise Interrupted(f"evaluation {evaluation_id} abandoned: {exc}") from exc
        await ensure_held(kept, f"evaluation {evaluation_id!r}")
        played = iter(finished)
        for match, round_ in rounds:
            games = [next(played) for _ in round_]
            await deps.store.append_many(
                game_events(
                    event,
                    games,
                    prefix=f"{evaluation_id}:{match.opponent.participant_id}",
                    first_index=match.tally.games,
                    context="evaluation",
                    context_id=evaluation_id,
                    producer=deps.producer,
                    generation=event.generation,
                )
            )
            for game in games:
                score = pair_score(game, candidate.participant_id, match.opponent.participant_id)
                match.tally.add(score)
            decided = match.tally.result(settings).sprt != "continue"
            match.tally.stopped_early = decided and match.tally.games < match.budget


async def _already_evaluated(store: EventStore, config: str, evaluation_id: str) -> bool:
    async for stored in store.read(LOG_STREAM, f"loop.eval.completed.{config}"):
        if getattr(stored.event, "evaluation_id", None) == evaluation_id:
            return True
    return False
