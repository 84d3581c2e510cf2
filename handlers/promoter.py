"""Consumes EvaluationCompleted and EloUpdated; emits ModelPromoted / ModelRejected naming the
gate, statistic and threshold, and ModelRolledBack when a new best regresses.

Gates, in order: cooldown since the config's last promotion (event time); floors against
the random and heuristic baselines by player count; then head to head against the current
best, passed by an SPRT accept or (in "sprt_or_wilson" / "wilson" mode) a Wilson lower
bound above the threshold, or (in "sprt_truncated" mode) an SPRT still undecided at the game
cap whose LLR is positive (the truncated test's decision). Only games against the current
best count: a gate whose opponent was rolled back while it ran is rejected, not judged
against the model restored. The first model of a config is promoted on the floors alone.
Every decision appends only if `loop.model.*.<config>` is unchanged since the registry
was read, so two promoters never race on a config.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.rating import DEFAULT_RATING
from engine.stats import sprt_bounds
from events import (
    EloUpdated,
    EvaluationCompleted,
    Event,
    ModelPromoted,
    ModelRejected,
    ModelRolledBack,
    Producer,
)
from events.catalogue import OpponentResult
from events.participants import BASELINES
from handlers.runtime import Append
from handlers.settings import LoopSettings
from projections.registry import (
    config_row,
    current_best,
    model_row,
    rating_key,
)
from projections.tables import Row, Tables

NAME = "promoter"


def model_subjects(config: str) -> str:
    return f"loop.model.*.{config}"


@dataclass(frozen=True)
class Verdict:
    promote: bool
    gate: str
    statistic: float
    threshold: float
    reason: str


def on_evaluation_completed(
    event: EvaluationCompleted, *, registry: Tables, settings: LoopSettings, producer: Producer
) -> Append | None:
    """Decide one evaluation; nothing when the candidate is already decided (redelivery)."""
    candidate = model_row(registry, event.candidate)
    if candidate is not None and candidate["state"] != "candidate":
        return None
    best = current_best(registry, event.config)
    if best is not None and best["model_id"] == event.candidate:
        return None
    verdict = judge(event, best, settings)
    common = dict(producer=producer, config=event.config, model_id=event.candidate,
                  gate=verdict.gate, statistic=verdict.statistic, threshold=verdict.threshold,
                  reason=verdict.reason, evaluation_id=event.evaluation_id)  # fmt: skip
    decision: Event
    if verdict.promote:
        generation = max(candidate["generation"] if candidate else 0,
                         config_row(registry, event.config)["generation"] + 1)  # fmt: skip
        previous = best["model_id"] if best else None
        decision = event.caused(ModelPromoted, "decision", previous_best=previous,
                                generation=generation, **common)  # fmt: skip
    else:
        decision = event.caused(ModelRejected, "decision", **common)
    return _conditional(decision, registry, event.config)


def judge(event: EvaluationCompleted, best: Row | None, settings: LoopSettings) -> Verdict:
    """The verdict of the gates on one evaluation, given the current best (if any)."""
    gates = settings.promotion
    if best is not None and gates.cooldown_s > 0 and best["promoted_at"]:
        elapsed = (event.occurred_at - datetime.fromisoformat(best["promoted_at"])).total_seconds()
        if elapsed < gates.cooldown_s:
            return Verdict(False, "cooldown", elapsed, gates.cooldown_s,
                           f"{elapsed:.0f}s since {best['model_id']} was promoted; "
                           f"cooldown is {gates.cooldown_s:.0f}s")  # fmt: skip
    by_opponent = {result.opponent: result for result in event.results}
    floor_verdict = _floors(event.config, by_opponent, settings)
    if floor_verdict is not None and not floor_verdict.promote:
        return floor_verdict
    if best is None:
        assert floor_verdict is not None
        return floor_verdict
    rival = _head_to_head(by_opponent, best)
    if rival is None:
        others = [name for name in by_opponent if name not in BASELINES]
        played = (f"; its head-to-head was against {', '.join(others)}, no longer the best "
                  f"(rolled back or replaced while the gate ran), and games against one "
                  f"model do not judge it against another" if others else "")  # fmt: skip
        return Verdict(False, "head_to_head", 0.0, gates.wilson_threshold,
                       f"no games against the current best {best['model_id']}{played}")  # fmt: skip
    return head_to_head_verdict(rival, best["model_id"], settings)


def _floors(
    config: str, results: dict[str, OpponentResult], settings: LoopSettings
) -> Verdict | None:
    """Reject on the first floor missed; otherwise pass, quoting the tightest floor."""
    passed: list[tuple[float, str, float, float]] = []
    for baseline, floors in settings.promotion.floors.items():
        floor = floors.of(config)
        if floor <= 0:
            continue
        result = results.get(baseline)
        if result is None:
            return Verdict(False, f"floor:{baseline}", 0.0, floor,
                           f"no evaluation games against {baseline}")  # fmt: skip
        if result.score < floor:
            return Verdict(False, f"floor:{baseline}", result.score, floor,
                           f"score {result.score:.3f} against {baseline} over {result.games} "
                           f"games is below the floor {floor:.3f}")  # fmt: skip
        passed.append((result.score - floor, baseline, result.score, floor))
    if not passed:
        return Verdict(True, "floors", 1.0, 0.0, "no baseline floors configured for this config")
    _, baseline, score, floor = min(passed)
    summary = ", ".join(f"{name} {s:.3f} >= {f:.3f}" for _, name, s, f in passed)
    return Verdict(
        True, "floors", score, floor, f"first model of the config; floors passed: {summary}"
    )


def _head_to_head(results: dict[str, OpponentResult], best: Row) -> OpponentResult | None:
    """The games against the current best, by its id or rating key; never those against
    another model (a gate whose opponent was rolled back mid-gate proves nothing of the
    model restored in its place)."""
    for name in (best["model_id"], rating_key(best), "best"):
        if name in results:
            return results[name]
    return None


def head_to_head_verdict(result: OpponentResult, best_id: str, settings: LoopSettings) -> Verdict:
    """Judge the head-to-head by the gate's own SPRT decision and Wilson bound (computed once,
    by handlers.gating, and carried in the EvaluationCompleted)."""
    gates, test = settings.promotion, settings.evaluation.sprt
    _, upper = sprt_bounds(test.alpha, test.beta)
    llr, decision, low = result.llr or 0.0, result.sprt or "continue", result.wilson_low
    record = (f"against {best_id}: W{result.wins:g} D{result.draws:g} L{result.losses:g} "
              f"score {result.score:.3f}, LLR {llr:.2f} ({decision}), "
              f"Wilson low {low:.3f}")  # fmt: skip
    if gates.head_to_head != "wilson" and decision == "accept":
        return Verdict(True, "sprt", llr, upper, f"SPRT accepted {record}")
    if gates.head_to_head == "sprt_truncated":
        if decision == "continue" and llr > 0:
            return Verdict(True, "sprt", llr, 0.0,
                           f"SPRT undecided at the game cap, LLR > 0 {record}")  # fmt: skip
        why = "SPRT rejected" if decision == "reject" else "SPRT undecided at the game cap, LLR ≤ 0"
        return Verdict(False, "sprt", llr, 0.0 if decision == "continue" else upper,
                       f"{why} {record}")  # fmt: skip
    if gates.head_to_head != "sprt" and low > gates.wilson_threshold:
        return Verdict(True, "wilson", low, gates.wilson_threshold, f"Wilson bound passed {record}")
    if gates.head_to_head == "sprt":
        return Verdict(False, "sprt", llr, upper, f"SPRT did not accept {record}")
    return Verdict(False, "head_to_head", low, gates.wilson_threshold,
                   f"neither SPRT accept nor Wilson low > {gates.wilson_threshold:g} {record}")  # fmt: skip


def on_elo_updated(
    event: EloUpdated, *, registry: Tables, elo: Tables, settings: LoopSettings, producer: Producer
) -> Append | None:
    """The regression watch: roll back one step when the new best falls below its predecessor."""
    config = config_row(registry, event.config)
    if config["best_source"] != "promoted" or not config["previous_best"]:
        return None
    best = current_best(registry, event.config)
    previous = model_row(registry, config["previous_best"])
    if best is None or previous is None:
        return None
    keys = {rating_key(best), rating_key(previous)}
    if not keys & {change.participant_id for change in event.changes}:
        return None
    best_rating = elo.get("elo_ratings", event.config, rating_key(best))
    if best_rating is None or best_rating["games"] < settings.promotion.regression_min_games:
        return None
    previous_rating = elo.get("elo_ratings", event.config, rating_key(previous))
    previous_elo = previous_rating["elo"] if previous_rating else DEFAULT_RATING
    gap = best_rating["elo"] - previous_elo
    margin = settings.promotion.regression_margin
    if gap >= -margin:
        return None
    rollback = event.caused(
        ModelRolledBack,
        f"rollback:{best['model_id']}",
        producer=producer,
        config=event.config,
        model_id=best["model_id"],
        gate="regression",
        statistic=gap,
        threshold=-margin,
        reason=(
            f"Elo {best_rating['elo']:.0f} after {best_rating['games']} games is "
            f"{-gap:.0f} below {previous['model_id']} ({previous_elo:.0f}); "
            f"margin {margin:g}"
        ),  # fmt: skip
        evaluation_id=(best.get("decision") or {}).get("evaluation_id"),
        restored_model_id=previous["model_id"],
    )
    return _conditional(rollback, registry, event.config)


def _conditional(decision: Event, registry: Tables, config: str) -> Append:
    return Append(
        [decision],
        expected_last_seq=config_row(registry, config)["last_model_seq"],
        expected_filter=model_subjects(config),
    )
