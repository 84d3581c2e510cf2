"""Folds EvaluationStarted, gating MatchCompleted and EvaluationCompleted into each gate's
per-opponent tallies: the read model the gating decider (handlers.gating) judges from.

A gate's plan is its EvaluationStarted v2: the opponents and how many games were published
against each, as EvalGameRequested work items numbered 0..n-1 in `planned_opponents` order
(match id ``<evaluation_id>:<index>``). Each gating MatchCompleted is counted once, for the
opponent its index was planned against; one that lands after the gate's EvaluationCompleted
(a game already in flight when the gate was decided) is counted as surplus, not in a tally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from events import EvaluationCompleted, EvaluationStarted, MatchCompleted
from projections.base import Projection
from projections.eventstore import StoredEvent
from projections.tables import Row, Table, Tables

GATES = Table(
    "gating_gates",
    {
        "evaluation_id": str,
        "config": str,
        "candidate": str,
        "opponents": list,
        "games": dict,
        "started_event_id": str,
        "started_seq": int,
        "completed_seq": int,
        "counted": int,
        "surplus": int,
    },
    ("evaluation_id",),
)
TALLIES = Table(
    "gating_tallies",
    {
        "evaluation_id": str,
        "opponent": str,
        "wins": int,
        "draws": int,
        "losses": int,
        "last_seq": int,
    },
    ("evaluation_id", "opponent"),
)
MATCHES = Table("gating_matches", {"match_id": str, "seq": int}, ("match_id",))
CONFIGS = Table(
    "gating_configs",
    {"config": str, "completed_seq": int, "open_gates": list},
    ("config",),
)


class GatingProjection(Projection):
    """Open and decided gates with their tallies; the decider's concurrency position."""

    name: ClassVar[str] = "gating"
    tables: ClassVar[tuple[Table, ...]] = (GATES, TALLIES, MATCHES, CONFIGS)

    def accepts(self, subject: str) -> bool:
        return subject.startswith(("loop.eval.started", "loop.eval.completed", "loop.match."))

    def apply(self, state: Tables, stored: StoredEvent) -> Tables:
        match stored.event:
            case EvaluationStarted() as event if event.games:
                _started(state, stored, event)
            case MatchCompleted() as event if event.context == "evaluation":
                _match(state, stored, event)
            case EvaluationCompleted() as event:
                _completed(state, stored, event)
        return state


# ------------------------------------------------------------ plan and reads


def planned_opponents(opponents: Sequence[str], games: dict[str, int]) -> list[str]:
    """The opponent of each gating game index: round-robin over the opponents in order, so
    every head-to-head advances together (an opponent drops out once its games are spent)."""
    left = {name: games.get(name, 0) for name in opponents}
    order: list[str] = []
    while any(left.values()):
        for name in opponents:
            if left[name] > 0:
                order.append(name)
                left[name] -= 1
    return order


def gating_match_id(evaluation_id: str, index: int) -> str:
    return f"{evaluation_id}:{index}"


def gate(state: Tables, evaluation_id: str) -> Row | None:
    return state.get(GATES.name, evaluation_id)


def is_open(state: Tables, evaluation_id: str) -> bool:
    row = gate(state, evaluation_id)
    return row is not None and row["completed_seq"] is None


def tallies(state: Tables, evaluation_id: str) -> dict[str, Row]:
    """Opponent -> its tally row (wins, draws, losses) for a gate, in the plan's order."""
    row = gate(state, evaluation_id)
    if row is None:
        return {}
    return {
        name: state.get(TALLIES.name, evaluation_id, name) or _tally(evaluation_id, name)
        for name in row["opponents"]
    }


def open_gates(state: Tables, config: str | None = None) -> list[str]:
    """Evaluation ids of the gates not yet decided (of one config, or of all)."""
    rows = [state.get(CONFIGS.name, config)] if config else list(state.rows(CONFIGS.name))
    return [eid for row in rows if row for eid in row["open_gates"]]


def completed_seq(state: Tables, config: str) -> int:
    """The stream sequence of the config's last EvaluationCompleted (0 before any)."""
    row = state.get(CONFIGS.name, config)
    return int(row["completed_seq"] or 0) if row else 0


# ------------------------------------------------------------ folding


def _config(state: Tables, config: str) -> Row:
    return state.get(CONFIGS.name, config) or {
        "config": config,
        "completed_seq": None,
        "open_gates": [],
    }


def _tally(evaluation_id: str, opponent: str) -> Row:
    return {
        "evaluation_id": evaluation_id,
        "opponent": opponent,
        "wins": 0,
        "draws": 0,
        "losses": 0,
        "last_seq": None,
    }


def _started(state: Tables, stored: StoredEvent, event: EvaluationStarted) -> None:
    if gate(state, event.evaluation_id) is not None:
        return  # a second EvaluationStarted for one gate (redone outside the duplicate window)
    state.put(
        GATES.name,
        {
            "evaluation_id": event.evaluation_id,
            "config": event.config,
            "candidate": event.candidate,
            "opponents": list(event.opponents),
            "games": dict(event.games),
            "started_event_id": event.event_id,
            "started_seq": stored.seq,
            "completed_seq": None,
            "counted": 0,
            "surplus": 0,
        },
    )
    config = _config(state, event.config)
    state.put(CONFIGS.name, {**config, "open_gates": [*config["open_gates"], event.evaluation_id]})


def _match(state: Tables, stored: StoredEvent, event: MatchCompleted) -> None:
    row = gate(state, event.context_id or "")
    if row is None or state.get(MATCHES.name, event.match_id) is not None:
        return  # not a gate of this log's plan, or this game was counted already
    opponent = _planned_opponent(row, event.match_id)
    if opponent is None:
        return
    state.put(MATCHES.name, {"match_id": event.match_id, "seq": stored.seq})
    if row["completed_seq"] is not None:
        state.put(GATES.name, {**row, "surplus": row["surplus"] + 1})
        return
    ranks = {p.participant_id: p.rank for p in event.participants}
    mine, theirs = ranks.get(row["candidate"]), ranks.get(opponent)
    if mine is None or theirs is None:
        return
    column = "draws" if mine == theirs else "wins" if mine < theirs else "losses"
    tally = state.get(TALLIES.name, row["evaluation_id"], opponent) or _tally(
        row["evaluation_id"], opponent
    )
    state.put(TALLIES.name, {**tally, column: tally[column] + 1, "last_seq": stored.seq})
    state.put(GATES.name, {**row, "counted": row["counted"] + 1})


def _planned_opponent(row: Row, match_id: str) -> str | None:
    prefix = f"{row['evaluation_id']}:"
    index = match_id.removeprefix(prefix)
    if not match_id.startswith(prefix) or not index.isdigit():
        return None
    plan = planned_opponents(row["opponents"], row["games"])
    return plan[int(index)] if int(index) < len(plan) else None


def _completed(state: Tables, stored: StoredEvent, event: EvaluationCompleted) -> None:
    config = _config(state, event.config)
    open_now = [eid for eid in config["open_gates"] if eid != event.evaluation_id]
    state.put(CONFIGS.name, {**config, "completed_seq": stored.seq, "open_gates": open_now})
    row = gate(state, event.evaluation_id)
    if row is not None and row["completed_seq"] is None:
        state.put(GATES.name, {**row, "completed_seq": stored.seq})
