"""Consumes ModelPromoted, ModelRejected and EloUpdated; emits CurriculumRebalanced with bounded
selfplay weights for every config, the inputs behind each weight recorded in the event.

weight = clamp(1 + max(0, Elo gap)/elo_gap_scale + data deficit
               + win_rate_weight × (0.5 − recent win rate) + feedback boost, min, max)

Rate limit, decided from the read model (never the clock): a promotion decision always
rebalances; rating updates rebalance once `every_inputs` of them arrived for the config
since the last rebalance. The append expects the last rebalance unchanged.
"""

from __future__ import annotations

from engine.rating import DEFAULT_RATING
from events import CurriculumRebalanced, EloUpdated, Event, ModelPromoted, ModelRejected, Producer
from events.catalogue import CurriculumInput
from handlers.feedback import knobs
from handlers.runtime import Append
from handlers.settings import LoopSettings
from projections.curriculum import pending, system_row
from projections.feedback import counters
from projections.games import config_counts
from projections.registry import current_best, rating_key
from projections.tables import Tables

NAME = "curriculum"
SUBJECT = "loop.curriculum.rebalanced"


def due(event: Event, curriculum: Tables, settings: LoopSettings) -> bool:
    """Whether this input (already folded into `curriculum`) calls for a rebalance now."""
    config = getattr(event, "config", None)
    if config not in settings.configs:
        return False
    counts = pending(curriculum, config)
    if isinstance(event, ModelPromoted | ModelRejected):
        return counts["decisions"] > 0
    return isinstance(event, EloUpdated) and counts["ratings"] >= settings.curriculum.every_inputs


def curriculum_input(
    config: str, *, registry: Tables, elo: Tables, games: Tables, feedback: Tables,
    settings: LoopSettings,
) -> CurriculumInput:  # fmt: skip
    """What the config's weight is computed from."""
    best = current_best(registry, config)
    rating = elo.get("elo_ratings", config, rating_key(best)) if best else None
    best_elo = rating["elo"] if rating else DEFAULT_RATING
    selfplay = config_counts(games, config)["selfplay"]
    scores = counters(feedback, config)["eval_scores"]
    return CurriculumInput(
        elo_gap=round(settings.curriculum.target_elo - best_elo, 3),
        data_deficit=round(max(0.0, 1.0 - selfplay / settings.curriculum.target_games), 6),
        recent_win_rate=scores[-1] if scores else None,
        boost=knobs(feedback, config, settings).curriculum_boost,
    )


def weight(inputs: CurriculumInput, settings: LoopSettings) -> float:
    curriculum = settings.curriculum
    raw = 1.0 + max(0.0, inputs.elo_gap) / curriculum.elo_gap_scale + inputs.data_deficit
    if inputs.recent_win_rate is not None:
        raw += curriculum.win_rate_weight * (0.5 - inputs.recent_win_rate)
    raw += inputs.boost
    return round(min(max(raw, curriculum.min_weight), curriculum.max_weight), 6)


def rebalance(
    event: Event,
    *,
    curriculum: Tables,
    registry: Tables,
    elo: Tables,
    games: Tables,
    feedback: Tables,
    settings: LoopSettings,
    producer: Producer,
) -> Append | None:
    """Rebalance all configs when this input makes one due."""
    if not due(event, curriculum, settings):
        return None
    inputs = {
        config: curriculum_input(
            config, registry=registry, elo=elo, games=games, feedback=feedback, settings=settings
        )  # fmt: skip
        for config in settings.configs
    }
    rebalanced = event.caused(
        CurriculumRebalanced,
        "curriculum",
        producer=producer,
        weights={config: weight(value, settings) for config, value in inputs.items()},
        inputs=inputs,
        min_weight=settings.curriculum.min_weight,
        max_weight=settings.curriculum.max_weight,
    )
    return Append(
        [rebalanced], expected_last_seq=system_row(curriculum)["last_seq"], expected_filter=SUBJECT
    )
