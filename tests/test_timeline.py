"""The timeline read model: a pure fold of the loop's decisions and dead letters, reasons whole."""

from __future__ import annotations

from datetime import UTC, datetime

from events import (
    CurriculumRebalanced,
    Event,
    FeedbackSignalRaised,
    ModelRolledBack,
    TrainingFailed,
)
from events.catalogue import CurriculumInput
from projections.base import fold
from projections.eventstore import StoredEvent
from projections.timeline import KINDS, TimelineProjection, entries, last_of
from tests import loop_story as story

WHEN = datetime(2026, 12, 2, tzinfo=UTC)


def stored(events: list[Event]) -> list[StoredEvent]:
    return [
        StoredEvent("RINGLOOP_LOG", seq, e.subject(), WHEN, e) for seq, e in enumerate(events, 1)
    ]


def history() -> list[Event]:
    return [
        *story.training(), *story.rated_matches(2), *story.verdict(),
        TrainingFailed(config=story.CONFIG, training_id="t-2", reason="out_of_memory",
                       error="CUDA out of memory while allocating 2 GiB"),
        FeedbackSignalRaised(config=story.CONFIG, signal="out_of_memory", knob="batch_size",
                             old_value=256, new_value=128, evidence={"failures": 1}),
        ModelRolledBack(config=story.CONFIG, model_id=story.MODEL, gate="regression",
                        statistic=-60, threshold=-50, reason="Elo fell 60 below its parent",
                        restored_model_id="square8_2p-g0"),
        CurriculumRebalanced(weights={story.CONFIG: 1.0}, min_weight=0.1, max_weight=3.0,
                             inputs={story.CONFIG: CurriculumInput(elo_gap=0, data_deficit=0)}),
        story.dead_letter(),
    ]  # fmt: skip


def test_every_decision_and_dead_letter_in_log_order_with_its_whole_reason() -> None:
    state = fold(TimelineProjection(), stored(history()))
    rows = entries(state)
    assert [r["kind"] for r in rows] == [
        "training_requested", "training_completed", "evaluation_completed", "promoted",
        "training_failed", "feedback", "rolled_back", "curriculum", "dead_letter",
    ]  # fmt: skip
    assert {r["kind"] for r in rows} <= set(KINDS)
    promoted = next(r for r in rows if r["kind"] == "promoted")
    assert promoted["reason"] == story.verdict()[1].reason  # type: ignore[attr-defined]
    assert promoted["details"]["gate"] == "floors" and promoted["causation_id"] is not None
    failed = next(r for r in rows if r["kind"] == "training_failed")
    assert failed["reason"] == "out_of_memory: CUDA out of memory while allocating 2 GiB"
    assert next(r for r in rows if r["kind"] == "dead_letter")["details"]["handler"] == "elo-rater"
    assert last_of(state, ("promoted", "rolled_back"), story.CONFIG)["kind"] == "rolled_back"  # type: ignore[index]
    per_config = entries(state, config=story.CONFIG, limit=3)
    assert [r["kind"] for r in per_config] == ["rolled_back", "curriculum", "dead_letter"]


def test_folding_in_two_chunks_equals_folding_once() -> None:
    events = stored(history())
    once = fold(TimelineProjection(), events)
    twice = fold(TimelineProjection(), events[5:], fold(TimelineProjection(), events[:5]))
    assert entries(once) == entries(twice)
