"""What reacts to what: `REACTIONS` maps each event class to the handler functions it triggers,
and that table *is* the wiring — ops.wiring builds one durable consumer per entry from it
(subjects and durable name derived from the event class, dependencies from the handler's
parameters). A stage is a module: `ringloop run <stage>` runs every reaction of one module.

What happens after TrainingCompleted: `gating.on_training_completed` opens a gate
(EvaluationStarted + one EvalGameRequested work item per game, on RINGLOOP_WORK) and
`feedback.raise_signals` checks the losses; any number of `evaluator` processes play the
items (GameCompleted + MatchCompleted each); `gating.on_match_completed` decides the gate
from the gating read model once the SPRT or the game cap says so (EvaluationCompleted);
`promoter.on_evaluation_completed` promotes or rejects; selfplay swaps to the new best on
ModelPromoted; the Elo rater, curriculum and feedback follow the same table.

Beside the reactions, `DAEMONS` names the long-running producers: the selfplay worker plays
games (GameCompleted) while it holds a selfplay slot. Both tables are built on first use
(importing the stages pulls in torch, which a command that only reads settings must not).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def _reactions() -> dict[type, tuple[Callable[..., Any], ...]]:
    from events import (
        EloUpdated,
        EvalGameRequested,
        EvaluationCompleted,
        GameCompleted,
        MatchCompleted,
        ModelPromoted,
        ModelRejected,
        ModelRolledBack,
        TaskStarted,
        TrainingCompleted,
        TrainingFailed,
        TrainingRequested,
    )
    from handlers import (
        coordinator,
        curriculum,
        data_gate,
        elo_rater,
        evaluator,
        feedback,
        gating,
        promoter,
        selfplay,
        trainer,
    )

    return {
        GameCompleted: (data_gate.on_game_completed,),
        TrainingRequested: (trainer.on_training_requested,),
        TrainingCompleted: (gating.on_training_completed, feedback.raise_signals),
        TrainingFailed: (feedback.raise_signals,),
        EvalGameRequested: (evaluator.on_eval_game_requested,),
        MatchCompleted: (elo_rater.on_match_completed, gating.on_match_completed),
        EvaluationCompleted: (promoter.on_evaluation_completed, feedback.raise_signals),
        EloUpdated: (promoter.on_elo_updated, curriculum.rebalance),
        ModelPromoted: (curriculum.rebalance, selfplay.on_model_changed),
        ModelRejected: (curriculum.rebalance, feedback.raise_signals),
        ModelRolledBack: (selfplay.on_model_changed,),
        TaskStarted: (coordinator.on_task_started,),
    }


@cache
def _daemons() -> dict[str, Callable[..., Any]]:
    from handlers import selfplay

    return {selfplay.NAME: selfplay.run_worker}


def __getattr__(name: str) -> Any:
    if name == "REACTIONS":
        return _reactions()
    if name == "DAEMONS":
        return _daemons()
    raise AttributeError(f"module 'handlers' has no attribute {name!r}")
