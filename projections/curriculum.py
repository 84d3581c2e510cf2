"""Folds CurriculumRebalanced into per-config selfplay weights, and counts the inputs since.

Selfplay allocates games in proportion to `curriculum_weights.weight`; the curriculum
handler rate-limits itself with `curriculum_pending` (rating inputs and promotion
decisions seen per config since the last rebalance) and appends conditionally on
`curriculum_state.last_seq`.
"""

from __future__ import annotations

from typing import ClassVar

from events import CurriculumRebalanced, EloUpdated, ModelPromoted, ModelRejected
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

WEIGHTS = Table(
    "curriculum_weights",
    {"config": str, "weight": float, "inputs": dict, "seq": int, "time": str},
    ("config",),
)
STATE = Table(
    "curriculum_state",
    {"system": str, "last_seq": int, "rebalances": int, "min_weight": float, "max_weight": float},
    ("system",),
)
PENDING = Table(
    "curriculum_pending",
    {"config": str, "ratings": int, "decisions": int, "last_input_seq": int},
    ("config",),
)
SYSTEM = "cluster"


class CurriculumProjection(Projection):
    """Current curriculum weights (one system for all configs) and inputs since the last one."""

    name: ClassVar[str] = "curriculum"
    tables: ClassVar[tuple[Table, ...]] = (WEIGHTS, STATE, PENDING)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(
            (
                "loop.curriculum.",
                "loop.elo.updated.",
                "loop.model.promoted.",
                "loop.model.rejected.",
            )
        )

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case CurriculumRebalanced() as event:
                _rebalanced(state, stored, event)
            case EloUpdated() as event:
                _count(state, event.config, "ratings", stored.seq)
            case ModelPromoted() | ModelRejected() as event:
                _count(state, event.config, "decisions", stored.seq)
        return state


def weights(state: Tables) -> dict[str, float]:
    """The current weight per config ({} before the first rebalance)."""
    return {row["config"]: row["weight"] for row in state.rows(WEIGHTS.name)}


def system_row(state: Tables) -> Row:
    return state.get(STATE.name, SYSTEM) or {
        "system": SYSTEM,
        "last_seq": 0,
        "rebalances": 0,
        "min_weight": None,
        "max_weight": None,
    }


def pending(state: Tables, config: str) -> Row:
    return state.get(PENDING.name, config) or {
        "config": config,
        "ratings": 0,
        "decisions": 0,
        "last_input_seq": 0,
    }


def _count(state: Tables, config: str, column: str, seq: int) -> None:
    row = pending(state, config)
    state.put(PENDING.name, {**row, column: row[column] + 1, "last_input_seq": seq})


def _rebalanced(state: Tables, stored: StoredEvent, event: CurriculumRebalanced) -> None:
    for config in [row["config"] for row in state.rows(WEIGHTS.name)]:
        if config not in event.weights:
            state.delete(WEIGHTS.name, config)
    for config, weight in event.weights.items():
        inputs = event.inputs.get(config)
        state.put(
            WEIGHTS.name,
            {
                "config": config,
                "weight": weight,
                "inputs": inputs.model_dump() if inputs is not None else {},
                "seq": stored.seq,
                "time": stored.time.isoformat(),
            },
        )
    for row in list(state.rows(PENDING.name)):
        state.put(PENDING.name, {**row, "ratings": 0, "decisions": 0})
    previous = system_row(state)
    state.put(
        STATE.name,
        {
            "system": SYSTEM,
            "last_seq": stored.seq,
            "rebalances": previous["rebalances"] + 1,
            "min_weight": event.min_weight,
            "max_weight": event.max_weight,
        },
    )
