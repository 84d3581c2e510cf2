"""Consumes training, evaluation and decision events; emits FeedbackSignalRaised that retunes
a knob (exploration, data per training, batch size, curriculum boost), clamped by LoopSettings.

`knobs(view, config, settings)` is how selfplay, the trainer, the data gate and the
curriculum read the current values: the settings value until a signal moves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from events import (
    EvaluationCompleted,
    Event,
    FeedbackSignalRaised,
    ModelPromoted,
    ModelRejected,
    Producer,
    TrainingCompleted,
    TrainingFailed,
)
from handlers.settings import LoopSettings
from projections.feedback import counters, knob_value, rejection_counts, signalled
from projections.tables import Tables

NAME = "feedback"

DIRICHLET_FRACTION = "selfplay.dirichlet_fraction"
MIN_NEW_GAMES = "data_gate.min_new_games"
BATCH_SIZE = "training.batch_size"
CURRICULUM_BOOST = "curriculum.boost"


@dataclass(frozen=True)
class Knobs:
    """The values feedback may move, for one config, as they stand now."""

    dirichlet_fraction: float
    min_new_games: int
    batch_size: int
    curriculum_boost: float


def base_value(settings: LoopSettings, config: str, knob: str) -> float:
    """A knob's value before any feedback signal."""
    return {
        DIRICHLET_FRACTION: settings.selfplay.dirichlet_fraction,
        MIN_NEW_GAMES: float(settings.data_gate.threshold(config)),
        BATCH_SIZE: float(settings.training.batch_size),
        CURRICULUM_BOOST: 0.0,
    }[knob]


def bounds(settings: LoopSettings, config: str, knob: str) -> tuple[float, float]:
    """The clamp for each knob: feedback never moves a value outside it."""
    fb = settings.feedback
    base = base_value(settings, config, knob)
    return {
        DIRICHLET_FRACTION: (base, max(base, fb.max_dirichlet_fraction)),
        MIN_NEW_GAMES: (base, base * fb.max_data_factor),
        BATCH_SIZE: (min(base, fb.min_batch_size), base),
        CURRICULUM_BOOST: (0.0, fb.max_curriculum_boost),
    }[knob]


def current(view: Tables, settings: LoopSettings, config: str, knob: str) -> float:
    value = knob_value(view, config, knob)
    return base_value(settings, config, knob) if value is None else value


def knobs(view: Tables, config: str, settings: LoopSettings) -> Knobs:
    """Current knob values for a config (settings value × the signals raised so far)."""
    return Knobs(
        dirichlet_fraction=current(view, settings, config, DIRICHLET_FRACTION),
        min_new_games=int(round(current(view, settings, config, MIN_NEW_GAMES))),
        batch_size=int(current(view, settings, config, BATCH_SIZE)),
        curriculum_boost=current(view, settings, config, CURRICULUM_BOOST),
    )


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def raise_signals(
    event: Event, *, feedback: Tables, settings: LoopSettings, producer: Producer
) -> Sequence[Event]:
    """Raise the signals this event completes; nothing twice for one input (redelivery)."""
    view = feedback
    wanted: list[_Signal | None]
    match event:
        case TrainingFailed() if event.reason == "oom":
            wanted = [_signal(event, view, settings, "out_of_memory", BATCH_SIZE, {})]
        case TrainingCompleted():
            wanted = [_loss_collapse(event, view, settings)]
        case EvaluationCompleted():
            wanted = [_flat_evaluation(event, view, settings)]
        case ModelRejected():
            wanted = [_plateau(event, view, settings), _promotion_failures(event, view, settings)]
        case ModelPromoted():
            wanted = []
        case _:
            wanted = []
    return [
        _as_event(event, producer, signal)
        for signal in wanted
        if signal is not None and not signalled(view, event.event_id, signal.signal)
    ]


@dataclass(frozen=True)
class _Signal:
    config: str
    signal: str
    knob: str
    old_value: float
    new_value: float
    evidence: dict[str, float]


def _signal(
    event: Event, view: Tables, settings: LoopSettings, signal: str, knob: str,
    evidence: dict[str, float],
) -> _Signal:  # fmt: skip
    config: str = event.config  # type: ignore[attr-defined]
    old = current(view, settings, config, knob)
    fb = settings.feedback
    step = {
        BATCH_SIZE: lambda v: float(int(v * fb.oom_batch_factor)),
        MIN_NEW_GAMES: lambda v: float(round(v * fb.data_factor)),
        DIRICHLET_FRACTION: lambda v: v * fb.exploration_factor,
        CURRICULUM_BOOST: lambda v: v + fb.curriculum_boost_step,
    }[knob]
    new = clamp(step(old), *bounds(settings, config, knob))
    return _Signal(config, signal, knob, old, new, evidence)


def _loss_collapse(
    event: TrainingCompleted, view: Tables, settings: LoopSettings
) -> _Signal | None:
    """Overfitting: the last epoch's loss far below the first's."""
    if len(event.losses) < 2:
        return None
    first = event.losses[0].policy_loss + event.losses[0].value_loss
    last = event.losses[-1].policy_loss + event.losses[-1].value_loss
    if first <= 0 or last / first >= settings.feedback.overfit_loss_ratio:
        return None
    evidence = {"first_epoch_loss": first, "last_epoch_loss": last, "ratio": last / first}
    return _signal(event, view, settings, "overfitting", MIN_NEW_GAMES, evidence)


def _flat_evaluation(
    event: EvaluationCompleted, view: Tables, settings: LoopSettings
) -> _Signal | None:
    """Overfitting: training loss fell between the last two trainings, evaluation did not rise."""
    row = counters(view, event.config)
    losses, scores = row["train_losses"], row["eval_scores"]
    if len(losses) < 2 or len(scores) < 2:
        return None
    if not (losses[-1] < losses[-2] and scores[-1] <= scores[-2]):
        return None
    evidence = {"loss_before": losses[-2], "loss_after": losses[-1],
                "score_before": scores[-2], "score_after": scores[-1]}  # fmt: skip
    return _signal(event, view, settings, "overfitting", MIN_NEW_GAMES, evidence)


def _plateau(event: ModelRejected, view: Tables, settings: LoopSettings) -> _Signal | None:
    """Every `plateau_evaluations`-th rejection since the last promotion (counted at the event)."""
    counts = rejection_counts(view, event.event_id)
    waited = counts[0] if counts else 0
    if waited == 0 or waited % settings.feedback.plateau_evaluations:
        return None
    evidence = {"evaluations_since_promotion": float(waited)}
    return _signal(event, view, settings, "plateau", DIRICHLET_FRACTION, evidence)


def _promotion_failures(
    event: ModelRejected, view: Tables, settings: LoopSettings
) -> _Signal | None:
    streak = counters(view, event.config)["rejection_streak"]
    if streak < settings.feedback.promotion_failure_streak:
        return None
    evidence = {"rejection_streak": float(streak)}
    return _signal(event, view, settings, "promotion_failures", CURRICULUM_BOOST, evidence)


def _as_event(cause: Event, producer: Producer, signal: _Signal) -> FeedbackSignalRaised:
    return cause.caused(  # type: ignore[no-any-return]
        FeedbackSignalRaised,
        f"feedback:{signal.signal}",
        producer=producer,
        config=signal.config,
        signal=signal.signal,
        knob=signal.knob,
        old_value=signal.old_value,
        new_value=signal.new_value,
        evidence=signal.evidence,
    )
