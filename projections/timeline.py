"""Folds the loop's decisions and failures into one timeline, in log order, reasons whole.

One row per decision the loop made (a training requested by the data gate, a training's
end, a gate's verdict, a promotion, rejection, rollback or retirement, a feedback knob
turned, a curriculum rebalance) and per dead letter (HandlerFailed): what the dashboard's
timeline shows and what the metrics count. Nothing is cut: the reason is the event's own.
"""

from __future__ import annotations

from typing import Any, ClassVar

from events import (
    CurriculumRebalanced,
    EvaluationCompleted,
    Event,
    FeedbackSignalRaised,
    HandlerFailed,
    ModelPromoted,
    ModelRejected,
    ModelRetired,
    ModelRolledBack,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
)
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

ENTRIES = Table(
    "timeline_entries",
    {
        "seq": int,
        "time": str,
        "kind": str,
        "config": str,
        "model_id": str,
        "summary": str,
        "reason": str,
        "details": dict,
        "event_id": str,
        "causation_id": str,
    },
    ("seq",),
)

KINDS = (
    "training_requested",
    "training_completed",
    "training_failed",
    "evaluation_completed",
    "promoted",
    "rejected",
    "rolled_back",
    "retired",
    "feedback",
    "curriculum",
    "dead_letter",
)
DECISIONS = ("promoted", "rejected", "rolled_back")  # the promoter's verdicts


class TimelineProjection(Projection):
    """Every decision and dead letter of the loop, keyed by log sequence."""

    name: ClassVar[str] = "timeline"
    tables: ClassVar[tuple[Table, ...]] = (ENTRIES,)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(
            ("loop.training.requested", "loop.training.completed", "loop.training.failed",
             "loop.eval.completed", "loop.model.promoted", "loop.model.rejected",
             "loop.model.rolled_back", "loop.model.retired", "loop.feedback.",
             "loop.curriculum.", "loop.dlq.")
        )  # fmt: skip

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        entry = describe(stored.event)
        if entry is not None:
            kind, config, model_id, summary, reason, details = entry
            event = stored.event
            state.put(ENTRIES.name, {
                "seq": stored.seq, "time": stored.time.isoformat(), "kind": kind,
                "config": config, "model_id": model_id, "summary": summary, "reason": reason,
                "details": details, "event_id": event.event_id,
                "causation_id": event.causation_id,
            })  # fmt: skip
        return state


Entry = tuple[str, str | None, str | None, str, str, dict[str, Any]]


def describe(event: Event) -> Entry | None:
    """(kind, config, model, one-line summary, whole reason, details) of a timeline event."""
    match event:
        case TrainingRequested():
            games = event.games
            return ("training_requested", event.config, event.parent_model_id,
                    f"training {event.training_id} requested on {games.count} games",
                    f"the data gate opened training {event.training_id} (generation "
                    f"{event.generation}) on {games.count} games, {games.subject} seq "
                    f"{games.first_seq}..{games.last_seq}", {"games": games.model_dump()})  # fmt: skip
        case TrainingCompleted():
            last = event.losses[-1] if event.losses else None
            loss = (
                f", last epoch policy {last.policy_loss:.4f} value {last.value_loss:.4f}"
                if last
                else ""
            )
            return ("training_completed", event.config, event.model_id,
                    f"{event.model_id} trained on {event.samples} samples",
                    f"training {event.training_id} produced {event.model_id} (generation "
                    f"{event.generation}): {len(event.losses)} epochs, {event.samples} samples, "
                    f"{event.samples_per_s:.0f} samples/s, {event.duration_s:.1f} s{loss}",
                    {"samples": event.samples, "samples_per_s": event.samples_per_s,
                     "duration_s": event.duration_s, "generation": event.generation,
                     "losses": [loss.model_dump() for loss in event.losses]})  # fmt: skip
        case TrainingFailed():
            return ("training_failed", event.config, None,
                    f"training {event.training_id} failed ({event.reason})",
                    f"{event.reason}: {event.error}", {})  # fmt: skip
        case EvaluationCompleted():
            return _evaluation(event)
        case ModelPromoted() | ModelRejected() | ModelRolledBack():
            return _verdict(event)
        case ModelRetired():
            return ("retired", event.config, event.model_id, f"{event.model_id} retired",
                    event.reason, {})  # fmt: skip
        case FeedbackSignalRaised():
            return ("feedback", event.config, None,
                    f"{event.signal}: {event.knob} {event.old_value:g} -> {event.new_value:g}",
                    f"feedback signal {event.signal} moved {event.knob} from {event.old_value:g} "
                    f"to {event.new_value:g}; evidence {_pairs(event.evidence)}",
                    {"signal": event.signal, "knob": event.knob, "evidence": event.evidence})  # fmt: skip
        case CurriculumRebalanced():
            weights = ", ".join(f"{c} {w:.3f}" for c, w in sorted(event.weights.items()))
            return ("curriculum", None, None, "curriculum rebalanced",
                    f"weights {weights} (bounds {event.min_weight:g}..{event.max_weight:g})",
                    {"weights": event.weights,
                     "inputs": {c: i.model_dump() for c, i in event.inputs.items()}})  # fmt: skip
        case HandlerFailed():
            return ("dead_letter", None, None,
                    f"{event.handler}: {event.error_type} on {event.input_stream}#{event.input_seq}",
                    f"{event.error_type}: {event.error}",
                    {"handler": event.handler, "input_stream": event.input_stream,
                     "input_seq": event.input_seq, "input_subject": event.input_subject,
                     "deliveries": event.deliveries})  # fmt: skip
    return None


def _evaluation(event: EvaluationCompleted) -> Entry:
    scores = ", ".join(f"{r.opponent} {r.score:.3f} over {r.games}" for r in event.results)
    early = " (decided early)" if event.decided_early else ""
    return ("evaluation_completed", event.config, event.candidate,
            f"gate {event.evaluation_id} decided{early}",
            f"candidate {event.candidate}: {scores}",
            {"results": [r.model_dump() for r in event.results]})  # fmt: skip


def _verdict(event: ModelPromoted | ModelRejected | ModelRolledBack) -> Entry:
    kind = {"model.promoted": "promoted", "model.rejected": "rejected"}.get(
        event.type, "rolled_back"
    )
    details: dict[str, Any] = {"gate": event.gate, "statistic": event.statistic,
                               "threshold": event.threshold, "evaluation_id": event.evaluation_id}  # fmt: skip
    if isinstance(event, ModelPromoted):
        details.update(previous_best=event.previous_best, generation=event.generation)
    if isinstance(event, ModelRolledBack):
        details["restored_model_id"] = event.restored_model_id
    summary = (f"{event.model_id} {kind.replace('_', ' ')} by gate {event.gate} "
               f"({event.statistic:.3f} vs {event.threshold:.3f})")  # fmt: skip
    return (kind, event.config, event.model_id, summary, event.reason, details)


def _pairs(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(values.items())) or "none"


# ------------------------------------------------------------ reads


def entries(state: Tables, *, config: str | None = None, limit: int | None = None) -> list[Row]:
    """Timeline rows in log order (of one config, plus the loop-wide ones), the newest `limit`."""
    rows = sorted(state.rows(ENTRIES.name), key=lambda row: row["seq"])
    if config is not None:
        rows = [row for row in rows if row["config"] in (config, None)]
    return rows[-limit:] if limit is not None else rows


def last_of(state: Tables, kind: str | tuple[str, ...], config: str) -> Row | None:
    """The config's newest entry of a kind (or of any of several kinds)."""
    kinds = (kind,) if isinstance(kind, str) else kind
    found = [r for r in state.rows(ENTRIES.name) if r["kind"] in kinds and r["config"] == config]
    return max(found, key=lambda row: row["seq"]) if found else None
