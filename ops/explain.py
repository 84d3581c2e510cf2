"""Explains a model from the log: its games, training, evaluation, matches, ratings and the
promotion decision, found by following causation ids (with ids as a fallback) backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from events import (
    EloUpdated,
    EvaluationCompleted,
    EvaluationStarted,
    Event,
    MatchCompleted,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRolledBack,
    TrainingCompleted,
    TrainingRequested,
    TrainingStarted,
)
from events.keys import rating_key
from events.streams import GAMES_STREAM, LOG_STREAM
from projections.eventstore import EventStore, StoredEvent


class UnknownModel(ValueError):
    """No TrainingCompleted, ModelRegistered or decision names this model id."""


@dataclass
class Explanation:
    model_id: str
    config: str | None = None
    generation: int | None = None
    parent_model_id: str | None = None
    games: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    matches: dict[str, Any] = field(default_factory=dict)
    ratings: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    chain: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _step(stored: StoredEvent) -> dict[str, Any]:
    event = stored.event
    return {"seq": stored.seq, "stream": stored.stream, "type": event.type,
            "event_id": event.event_id, "causation_id": event.causation_id,
            "time": stored.time.isoformat(), "producer": event.producer.name}  # fmt: skip


async def explain_model(store: EventStore, model_id: str) -> Explanation:
    """Assemble the explanation of one model from the whole log."""
    log = await store.read_all(LOG_STREAM, "loop.>")
    by_id = {stored.event.event_id: stored for stored in log}
    out = Explanation(model_id)
    trained = _first(log, lambda e: isinstance(e, TrainingCompleted) and e.model_id == model_id)
    registered = _first(log, lambda e: isinstance(e, ModelRegistered) and e.model_id == model_id)
    decisions = [s for s in log if _decides(s.event, model_id)]
    if trained is None and registered is None and not decisions:
        raise UnknownModel(f"no event in the log names model {model_id!r}")
    origin = trained or registered
    if origin is not None:
        event: Any = origin.event
        out.config, out.generation = event.config, event.generation
        out.parent_model_id = event.parent_model_id
    if trained is not None:
        await _training(store, out, trained, log, by_id)
    evaluation_ids = _evaluations(out, log, model_id)
    _matches_and_ratings(out, log, evaluation_ids, model_id, trained)
    out.decisions = [_decision(s) for s in decisions]
    if decisions:
        out.chain = _chain(decisions[-1], by_id)
    elif trained is not None:
        out.chain = _chain(trained, by_id)
    return out


def _first(log: list[StoredEvent], test: Any) -> StoredEvent | None:
    return next((stored for stored in log if test(stored.event)), None)


def _decides(event: Event, model_id: str) -> bool:
    if isinstance(event, ModelPromoted | ModelRejected | ModelRolledBack):
        restored = isinstance(event, ModelRolledBack) and event.restored_model_id == model_id
        return event.model_id == model_id or restored
    return False


async def _training(
    store: EventStore, out: Explanation, trained: StoredEvent, log: list[StoredEvent],
    by_id: dict[str, StoredEvent],
) -> None:  # fmt: skip
    done: TrainingCompleted = trained.event  # type: ignore[assignment]
    cause = by_id.get(done.causation_id or "")
    requested = cause if cause and isinstance(cause.event, TrainingRequested) else _first(
        log, lambda e: isinstance(e, TrainingRequested) and e.training_id == done.training_id
    )  # fmt: skip
    started = _first(
        log, lambda e: isinstance(e, TrainingStarted) and e.training_id == done.training_id
    )
    losses = [loss.policy_loss + loss.value_loss for loss in done.losses]
    out.training = {
        "training_id": done.training_id, "completed_seq": trained.seq,
        "requested_seq": requested.seq if requested else None,
        "started_seq": started.seq if started else None,
        "epochs": len(done.losses), "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None, "samples": done.samples,
        "duration_s": done.duration_s, "artifact": done.artifact.model_dump(),
    }  # fmt: skip
    source = requested.event.games if requested else done.data  # type: ignore[attr-defined]
    stored_games = await store.read_all(
        GAMES_STREAM, source.subject, start_seq=source.first_seq, end_seq=source.last_seq
    )
    out.games = {**source.model_dump(), "found": len(stored_games),
                 "generations": sorted({s.event.generation for s in stored_games}),  # type: ignore[attr-defined]
                 "trigger": requested.event.causation_id if requested else None}  # fmt: skip


def _evaluations(out: Explanation, log: list[StoredEvent], model_id: str) -> set[str]:
    ids = set()
    for stored in log:
        event = stored.event
        if isinstance(event, EvaluationStarted) and event.candidate == model_id:
            ids.add(event.evaluation_id)
        if isinstance(event, EvaluationCompleted) and event.candidate == model_id:
            ids.add(event.evaluation_id)
            out.evaluations.append({
                "evaluation_id": event.evaluation_id, "seq": stored.seq,
                "decided_early": event.decided_early,
                "results": [r.model_dump() for r in event.results],
            })  # fmt: skip
    return ids


def _matches_and_ratings(
    out: Explanation, log: list[StoredEvent], evaluation_ids: set[str], model_id: str,
    trained: StoredEvent | None,
) -> None:  # fmt: skip
    keys = {model_id}
    if trained is not None:
        keys.add(rating_key(model_id, trained.event.artifact.sha256))  # type: ignore[attr-defined]
    matches = [s.event for s in log if isinstance(s.event, MatchCompleted)
               and (s.event.context_id in evaluation_ids
                    or any(p.key in keys or p.participant_id in keys for p in s.event.participants))]  # fmt: skip
    match_ids = {m.match_id for m in matches}
    evaluation_matches = [m for m in matches if m.context_id in evaluation_ids]
    out.matches = {"total": len(matches), "in_evaluations": len(evaluation_matches)}
    updates = [s for s in log if isinstance(s.event, EloUpdated) and s.event.match_id in match_ids]
    mine = [c for s in updates for c in s.event.changes if c.participant_id in keys]  # type: ignore[attr-defined]
    out.ratings = {"updates": len(updates), "rated_games": len(mine),
                   "first_elo": mine[0].before if mine else None,
                   "elo": mine[-1].after if mine else None}  # fmt: skip


def _decision(stored: StoredEvent) -> dict[str, Any]:
    event: Any = stored.event
    kind = {"model.promoted": "promoted", "model.rejected": "rejected"}.get(
        event.type, "rolled_back"
    )
    decision = {"kind": kind, "seq": stored.seq, "model_id": event.model_id, "gate": event.gate,
                "statistic": event.statistic, "threshold": event.threshold, "reason": event.reason,
                "evaluation_id": event.evaluation_id}  # fmt: skip
    if isinstance(event, ModelPromoted):
        decision["previous_best"] = event.previous_best
    if isinstance(event, ModelRolledBack):
        decision["restored_model_id"] = event.restored_model_id
    return decision


def _chain(last: StoredEvent, by_id: dict[str, StoredEvent]) -> list[dict[str, Any]]:
    """From the first cause to `last`, following causation ids through the log."""
    chain = [_step(last)]
    seen = {last.event.event_id}
    cause = last.event.causation_id
    while cause and cause not in seen:
        seen.add(cause)
        stored = by_id.get(cause)
        if stored is None:  # outside the log stream (a game) or not stored: name it and stop
            chain.append({"event_id": cause, "type": "(outside RINGLOOP_LOG)", "seq": None})
            break
        chain.append(_step(stored))
        cause = stored.event.causation_id
    return list(reversed(chain))


def render(explanation: Explanation) -> str:
    """A readable multi-line account of the explanation."""
    e = explanation
    lines = [f"model {e.model_id}  config {e.config}  generation {e.generation}  "
             f"parent {e.parent_model_id or '-'}"]  # fmt: skip
    if e.games:
        g = e.games
        lines.append(f"games     {g['count']} on {g['subject']} seq {g['first_seq']}..{g['last_seq']} "
                     f"({g['found']} found, generations {g['generations']})")  # fmt: skip
    if e.training:
        t = e.training
        lines.append(f"training  {t['training_id']}: requested seq {t['requested_seq']}, completed seq "
                     f"{t['completed_seq']}; {t['epochs']} epochs, loss {t['first_loss']} -> "
                     f"{t['last_loss']}, {t['samples']} samples, {t['duration_s']:.1f}s")  # fmt: skip
    for ev in e.evaluations:
        scores = ", ".join(
            f"{r['opponent']} {r['score']:.3f} ({r['games']} games)" for r in ev["results"]
        )
        lines.append(f"evaluation {ev['evaluation_id']} seq {ev['seq']}: {scores}")
    lines.append(
        f"matches   {e.matches.get('total', 0)} ({e.matches.get('in_evaluations', 0)} in evaluations)"
    )
    lines.append(f"ratings   {e.ratings.get('rated_games', 0)} rated games, Elo "
                 f"{e.ratings.get('first_elo')} -> {e.ratings.get('elo')}")  # fmt: skip
    for d in e.decisions:
        extra = f", previous best {d['previous_best']}" if d.get("previous_best") else ""
        extra += f", restored {d['restored_model_id']}" if d.get("restored_model_id") else ""
        lines.append(f"decision  {d['kind']} {d['model_id']} by gate {d['gate']}: statistic "
                     f"{d['statistic']:.3f} vs threshold {d['threshold']:.3f}{extra} — {d['reason']}")  # fmt: skip
    if e.chain:
        lines.append("causal chain:")
        lines += [
            f"  {step.get('seq') or '-':>6}  {step['type']:<22} {step['event_id']}"
            for step in e.chain
        ]
    return "\n".join(lines)
