"""Folds training, evaluation, decision and task events into pipeline status per config.

Per config: the last TrainingRequested (its sequence is the data gate's concurrency
position, its game range says what was trained on), whether a training is running,
the last training, evaluation and promotion decision with its reason, the generation.
Per task: the coordinator's leases as announced by TaskStarted / TaskFinished.
"""

from __future__ import annotations

from typing import ClassVar

from events import (
    EvaluationCompleted,
    EvaluationStarted,
    ModelPromoted,
    ModelRejected,
    ModelRolledBack,
    TaskFinished,
    TaskStarted,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

CONFIGS = Table(
    "pipeline_configs",
    {
        "config": str,
        "last_requested_seq": int,
        "last_requested_at": str,
        "trained_through_seq": int,
        "running_training_id": str,
        "last_training_id": str,
        "last_training_state": str,
        "last_training_error": str,
        "last_evaluation_id": str,
        "evaluating": bool,
        "last_decision": str,
        "last_decision_model": str,
        "last_decision_reason": str,
        "generation": int,
        "trainings_requested": int,
        "trainings_completed": int,
        "trainings_failed": int,
        "last_seq": int,
    },
    ("config",),
)
TASKS = Table(
    "pipeline_tasks",
    {
        "task_id": str,
        "task_type": str,
        "lease_key": str,
        "holder": str,
        "fencing_token": int,
        "started_seq": int,
        "outcome": str,
    },
    ("task_id",),
)


class PipelineProjection(Projection):
    """Where each config stands in the loop, and which tasks hold leases."""

    name: ClassVar[str] = "pipeline"
    tables: ClassVar[tuple[Table, ...]] = (CONFIGS, TASKS)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(
            ("loop.training.", "loop.eval.", "loop.model.promoted.", "loop.model.rejected.",
             "loop.model.rolled_back.", "loop.task.started", "loop.task.finished")
        )  # fmt: skip

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        event = stored.event
        match event:
            case TrainingRequested():
                row = status(state, event.config)
                _put(state, stored, row, last_requested_seq=stored.seq,
                     last_requested_at=event.occurred_at.isoformat(),
                     trained_through_seq=max(row["trained_through_seq"], event.games.last_seq),
                     running_training_id=event.training_id, last_training_id=event.training_id,
                     last_training_state="requested", last_training_error=None,
                     trainings_requested=row["trainings_requested"] + 1)  # fmt: skip
            case TrainingStarted():
                _training(state, stored, event.config, event.training_id, "started")
            case TrainingCompleted():
                row = _training(state, stored, event.config, event.training_id, "completed")
                _put(state, stored, row, trainings_completed=row["trainings_completed"] + 1)
            case TrainingFailed():
                row = _training(state, stored, event.config, event.training_id, "failed")
                _put(state, stored, row, last_training_error=f"{event.reason}: {event.error}"[:500],
                     trainings_failed=row["trainings_failed"] + 1)  # fmt: skip
            case EvaluationStarted():
                _put(state, stored, status(state, event.config),
                     last_evaluation_id=event.evaluation_id, evaluating=True)  # fmt: skip
            case EvaluationCompleted():
                _put(state, stored, status(state, event.config),
                     last_evaluation_id=event.evaluation_id, evaluating=False)  # fmt: skip
            case ModelPromoted() | ModelRejected() | ModelRolledBack():
                _decision(state, stored, event)
            case TaskStarted():
                state.put(TASKS.name, {"task_id": event.task_id, "task_type": event.task_type,
                                       "lease_key": event.lease_key, "holder": event.holder,
                                       "fencing_token": event.fencing_token,
                                       "started_seq": stored.seq, "outcome": None})  # fmt: skip
            case TaskFinished():
                task = state.get(TASKS.name, event.task_id)
                if task is not None and task["outcome"] is None:
                    state.put(TASKS.name, {**task, "outcome": event.outcome})
        return state


def status(state: Tables, config: str) -> Row:
    """The config's pipeline row; a fresh one if nothing happened to it yet."""
    return state.get(CONFIGS.name, config) or {
        "config": config,
        "last_requested_seq": 0,
        "last_requested_at": None,
        "trained_through_seq": 0,
        "running_training_id": None,
        "last_training_id": None,
        "last_training_state": None,
        "last_training_error": None,
        "last_evaluation_id": None,
        "evaluating": False,
        "last_decision": None,
        "last_decision_model": None,
        "last_decision_reason": None,
        "generation": 0,
        "trainings_requested": 0,
        "trainings_completed": 0,
        "trainings_failed": 0,
        "last_seq": 0,
    }


def task(state: Tables, task_id: str) -> Row | None:
    return state.get(TASKS.name, task_id)


def _put(state: Tables, stored: StoredEvent, row: Row, **changes: object) -> Row:
    row = {**row, **changes, "last_seq": stored.seq}
    state.put(CONFIGS.name, row)
    return row


def _training(state: Tables, stored: StoredEvent, config: str, training_id: str, phase: str) -> Row:
    row = status(state, config)
    ended = row["last_training_id"] == training_id and row["last_training_state"] in (
        "completed",
        "failed",
    )
    if phase == "started":
        if ended:  # a late or redelivered TrainingStarted after the end: keep the end
            return row
        return _put(state, stored, row, running_training_id=training_id,
                    last_training_id=training_id, last_training_state=phase)  # fmt: skip
    running = None if row["running_training_id"] == training_id else row["running_training_id"]
    return _put(state, stored, row, running_training_id=running, last_training_id=training_id,
                last_training_state=phase)  # fmt: skip


def _decision(
    state: Tables, stored: StoredEvent, event: ModelPromoted | ModelRejected | ModelRolledBack
) -> None:
    row = status(state, event.config)
    kind = {"model.promoted": "promoted", "model.rejected": "rejected"}.get(
        event.type, "rolled_back"
    )
    generation = event.generation if isinstance(event, ModelPromoted) else row["generation"]
    _put(state, stored, row, last_decision=kind, last_decision_model=event.model_id,
         last_decision_reason=f"{event.gate}: {event.reason}",
         generation=max(row["generation"], generation))  # fmt: skip
