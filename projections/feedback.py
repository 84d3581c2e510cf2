"""Folds FeedbackSignalRaised into the current knob values per config, plus the counters
the feedback handler decides from (evaluations without promotion, rejection streak,
recent training losses and evaluation scores).

A knob absent here has its LoopSettings value; `handlers.feedback.knobs` combines both.
"""

from __future__ import annotations

from typing import ClassVar

from events import (
    EvaluationCompleted,
    FeedbackSignalRaised,
    ModelPromoted,
    ModelRejected,
    TrainingCompleted,
)
from events.participants import BASELINES
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

KNOBS = Table(
    "feedback_knobs",
    {"config": str, "knob": str, "value": float, "signals": int, "last_signal": str, "seq": int},
    ("config", "knob"),
)
SIGNALS = Table(
    "feedback_signals",
    {
        "causation_id": str,
        "signal": str,
        "config": str,
        "knob": str,
        "old_value": float,
        "new_value": float,
        "evidence": dict,
        "seq": int,
    },
    ("causation_id", "signal"),
)
REJECTIONS = Table(
    "feedback_rejections",
    {"event_id": str, "config": str, "since_promotion": int, "streak": int, "seq": int},
    ("event_id",),
)
COUNTERS = Table(
    "feedback_counters",
    {
        "config": str,
        "evaluations_since_promotion": int,
        "rejection_streak": int,
        "train_losses": list,
        "eval_scores": list,
        "last_seq": int,
    },
    ("config",),
)
HISTORY = 3


class FeedbackProjection(Projection):
    """Current feedback knobs per config and the evidence counters behind the next signal."""

    name: ClassVar[str] = "feedback"
    tables: ClassVar[tuple[Table, ...]] = (KNOBS, SIGNALS, COUNTERS, REJECTIONS)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(
            (
                "loop.feedback.",
                "loop.model.promoted.",
                "loop.model.rejected.",
                "loop.training.completed.",
                "loop.eval.completed.",
            )
        )

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case FeedbackSignalRaised() as event:
                _raised(state, stored, event)
            case ModelPromoted() as event:
                _update(state, event.config, stored.seq, evaluations_since_promotion=0,
                        rejection_streak=0)  # fmt: skip
            case ModelRejected() as event:
                _rejected(state, stored, event)
            case TrainingCompleted() as event if event.losses:
                last = event.losses[-1]
                losses = [
                    *counters(state, event.config)["train_losses"],
                    last.policy_loss + last.value_loss,
                ]
                _update(state, event.config, stored.seq, train_losses=losses[-HISTORY:])
            case EvaluationCompleted() as event if event.results:
                scores = [*counters(state, event.config)["eval_scores"], evaluation_score(event)]
                _update(state, event.config, stored.seq, eval_scores=scores[-HISTORY:])
        return state


def _rejected(state: Tables, stored: StoredEvent, event: ModelRejected) -> None:
    """Count the rejection, and remember the counts as of this very event for the handler."""
    if state.get(REJECTIONS.name, event.event_id) is not None:
        return
    row = counters(state, event.config)
    since, streak = row["evaluations_since_promotion"] + 1, row["rejection_streak"] + 1
    _update(state, event.config, stored.seq, evaluations_since_promotion=since,
            rejection_streak=streak)  # fmt: skip
    state.put(REJECTIONS.name, {"event_id": event.event_id, "config": event.config,
                                "since_promotion": since, "streak": streak, "seq": stored.seq})  # fmt: skip


def rejection_counts(state: Tables, event_id: str) -> tuple[int, int] | None:
    """(rejections since the last promotion, rejection streak) as of that ModelRejected."""
    row = state.get(REJECTIONS.name, event_id)
    return None if row is None else (row["since_promotion"], row["streak"])


def evaluation_score(event: EvaluationCompleted) -> float:
    """The candidate's score that feedback tracks: head-to-head if played, else vs heuristic."""
    by_opponent = {r.opponent: r.score for r in event.results}
    rivals = [score for name, score in by_opponent.items() if name not in BASELINES]
    if rivals:
        return rivals[0]
    if "heuristic" in by_opponent:
        return by_opponent["heuristic"]
    return sum(by_opponent.values()) / len(by_opponent)


def counters(state: Tables, config: str) -> Row:
    return state.get(COUNTERS.name, config) or {
        "config": config,
        "evaluations_since_promotion": 0,
        "rejection_streak": 0,
        "train_losses": [],
        "eval_scores": [],
        "last_seq": 0,
    }


def knob_value(state: Tables, config: str, knob: str) -> float | None:
    """The knob's value after feedback, or None when no signal has moved it yet."""
    row = state.get(KNOBS.name, config, knob)
    return None if row is None else float(row["value"])


def signalled(state: Tables, causation_id: str, signal: str) -> bool:
    """Whether a signal caused by this event was already raised (redelivery guard)."""
    return state.get(SIGNALS.name, causation_id, signal) is not None


def _update(state: Tables, config: str, seq: int, **changes: object) -> None:
    state.put(COUNTERS.name, {**counters(state, config), **changes, "last_seq": seq})


def _raised(state: Tables, stored: StoredEvent, event: FeedbackSignalRaised) -> None:
    previous = state.get(KNOBS.name, event.config, event.knob)
    state.put(
        KNOBS.name,
        {
            "config": event.config,
            "knob": event.knob,
            "value": event.new_value,
            "signals": (previous["signals"] if previous else 0) + 1,
            "last_signal": event.signal,
            "seq": stored.seq,
        },
    )
    state.put(
        SIGNALS.name,
        {
            "causation_id": event.causation_id or event.event_id,
            "signal": event.signal,
            "config": event.config,
            "knob": event.knob,
            "old_value": event.old_value,
            "new_value": event.new_value,
            "evidence": dict(event.evidence),
            "seq": stored.seq,
        },
    )
    # An overfitting signal answers the loss/score evidence so far: that history starts over.
    if event.signal == "overfitting":
        _update(state, event.config, stored.seq, train_losses=[], eval_scores=[])
