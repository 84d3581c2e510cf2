"""Consumes TrainingCompleted and gating MatchCompleted; emits EvaluationStarted with the gate's
EvalGameRequested work items, then EvaluationCompleted once the SPRT or the game cap decides.

A gate is shared work: its games are published to the work-queue stream and played by any
number of evaluators (handlers.evaluator), on any hosts. The gating read model
(projections.gating) tallies the results per opponent; `on_match_completed` is a pure
decider over it: when every head-to-head is decided — its SPRT left "continue", or all of
its games were played — it appends the EvaluationCompleted, expecting
``loop.eval.completed.<config>`` unchanged since the view was read, so two deciders never
both decide. Items still queued when a gate is decided are withdrawn: evaluators acknowledge
them unplayed. At most ``tasks.evaluation`` gates are open at once (a new one waits).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.stats import sprt, wilson_interval
from events import (
    EvalGameRequested,
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    MatchCompleted,
    OpponentResult,
    Producer,
    SeatSpec,
    TrainingCompleted,
    derive_event_id,
)
from handlers.runtime import Append, Consumer, Waiting
from handlers.settings import LoopSettings, players_of
from projections.gating import (
    completed_seq,
    gate,
    is_open,
    open_gates,
    planned_opponents,
    tallies,
)
from projections.registry import current_best, model_row
from projections.tables import Row, Tables

NAME = "gating"


def consumer(settings: LoopSettings) -> Consumer:
    """A new gate beyond ``tasks.evaluation`` waits in place for one to close."""
    return Consumer(nak_delays=settings.tasks.slot_retry_delays_s, wait_in_place=True)


# Seats a multiplayer head-to-head leaves empty are filled by these tiers, in this order.
FILLER_TIERS = ("heuristic", "random", "mcts-16", "mcts-32")


class GatesBusy(Waiting):
    """``tasks.evaluation`` gates are open already: the new one waits for a slot."""


def evaluation_id_for(training_id: str) -> str:
    return f"eval-{training_id}"


def fillers(players: int, present: list[str]) -> list[SeatSpec]:
    """Tier seats for the seats a head-to-head leaves empty (distinct participants)."""
    free = [name for name in FILLER_TIERS if name not in present]
    return [SeatSpec(participant_id=name, kind="tier") for name in free[: players - len(present)]]


def rotated(lineup: list[SeatSpec], game: int) -> list[SeatSpec]:
    """Game ``game``'s seating: the lineup rotated so every participant sits every seat."""
    shift = game % len(lineup)
    return lineup[shift:] + lineup[:shift]


def seed_of(evaluation_id: str, index: int) -> int:
    digest = derive_event_id(evaluation_id, f"seed:{index}").replace("-", "")
    return int(digest[-15:], 16)


# ---------------------------------------------------------------- opening a gate


def on_training_completed(
    event: Event, *, registry: Tables, gating: Tables, settings: LoopSettings, producer: Producer
) -> list[Event] | None:
    """Open the candidate's gate: its plan, and one work item per gating game."""
    if not isinstance(event, TrainingCompleted):
        return None
    evaluation_id = evaluation_id_for(event.training_id)
    candidate = model_row(registry, event.model_id)
    if gate(gating, evaluation_id) is not None or (
        candidate is not None and candidate["state"] != "candidate"
    ):
        return None  # opened already (redelivery), or decided some other way
    busy = open_gates(gating)
    if len(busy) >= settings.tasks.evaluation:
        raise GatesBusy(f"{len(busy)} gates open ({', '.join(busy)}); limit tasks.evaluation")
    me = SeatSpec(participant_id=event.model_id, kind="model", artifact=event.artifact)
    rivals = _rivals(registry, event, settings)
    budgets = {
        seat.participant_id: settings.evaluation.games
        if seat.kind == "model"
        else settings.evaluation.baseline_games
        for seat in rivals
    }
    names = [seat.participant_id for seat in rivals]
    players = players_of(event.config)
    lineups = {
        seat.participant_id: [me, seat, *fillers(players, [me.participant_id, seat.participant_id])]
        for seat in rivals
    }
    started = event.caused(
        EvaluationStarted,
        "evaluation-started",
        producer=producer,
        config=event.config,
        evaluation_id=evaluation_id,
        candidate=event.model_id,
        opponents=names,
        games=budgets,
    )
    played: dict[str, int] = dict.fromkeys(names, 0)
    items: list[Event] = [started]
    for index, opponent in enumerate(planned_opponents(names, budgets)):
        items.append(
            event.caused(
                EvalGameRequested,
                f"gate-game:{index}",
                producer=producer,
                config=event.config,
                context="evaluation",
                tournament_id=evaluation_id,
                game_index=index,
                seats=rotated(lineups[opponent], played[opponent]),
                seed=seed_of(evaluation_id, index),
            )
        )
        played[opponent] += 1
    return items


def _rivals(registry: Tables, event: TrainingCompleted, settings: LoopSettings) -> list[SeatSpec]:
    """The current best (when there is one, other than the candidate) and the baselines."""
    seats = [SeatSpec(participant_id=name, kind="tier") for name in settings.evaluation.baselines]
    best = current_best(registry, event.config)
    if best is not None and best["model_id"] != event.model_id and best["artifact"]:
        seats.insert(
            0, SeatSpec(participant_id=best["model_id"], kind="model", artifact=best["artifact"])
        )
    return seats


# ---------------------------------------------------------------- deciding a gate


@dataclass(frozen=True)
class HeadToHead:
    """One opponent's results so far, judged by the one SPRT of the loop."""

    opponent: str
    wins: int
    draws: int
    losses: int
    budget: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    def result(self, settings: LoopSettings) -> OpponentResult:
        test, evaluation = settings.evaluation.sprt, settings.evaluation
        points = self.wins + 0.5 * self.draws
        low, high = wilson_interval(points, self.games, evaluation.confidence)
        decided = sprt(self.wins, self.draws, self.losses, elo0=test.elo0, elo1=test.elo1,
                       alpha=test.alpha, beta=test.beta)  # fmt: skip
        return OpponentResult(
            opponent=self.opponent,
            games=self.games,
            wins=self.wins,
            losses=self.losses,
            draws=self.draws,
            score=points / self.games if self.games else 0.0,
            wilson_low=low,
            wilson_high=high,
            sprt=decided.decision,
            llr=decided.llr,
        )


def head_to_heads(gating: Tables, row: Row) -> list[HeadToHead]:
    return [
        HeadToHead(name, t["wins"], t["draws"], t["losses"], int(row["games"].get(name, 0)))
        for name, t in tallies(gating, row["evaluation_id"]).items()
    ]


def on_match_completed(
    event: Event, *, gating: Tables, settings: LoopSettings, producer: Producer
) -> Append | None:
    """Decide the gate this game belongs to, once every head-to-head is decided."""
    if not isinstance(event, MatchCompleted) or event.context != "evaluation":
        return None
    row = gate(gating, event.context_id or "")
    if row is None or not is_open(gating, row["evaluation_id"]):
        return None
    matches = head_to_heads(gating, row)
    results = [match.result(settings) for match in matches]
    decided = [
        m.games >= m.budget or r.sprt != "continue" for m, r in zip(matches, results, strict=True)
    ]
    if not all(decided):
        return None
    completed = EvaluationCompleted(
        event_id=derive_event_id(row["started_event_id"], "evaluation-completed"),
        causation_id=event.event_id,
        correlation_id=event.correlation_id,
        producer=producer,
        config=row["config"],
        evaluation_id=row["evaluation_id"],
        candidate=row["candidate"],
        results=results,
        decided_early=any(match.games < match.budget for match in matches),
    )
    return Append(
        [completed],
        expected_last_seq=completed_seq(gating, row["config"]),
        expected_filter=f"loop.eval.completed.{row['config']}",
    )
