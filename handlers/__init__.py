"""What reacts to what: one line per stage, from the event it consumes to its handler.

| consumes                                   | handler (module)                  | emits                                     |
|--------------------------------------------|-----------------------------------|-------------------------------------------|
| (a worker loop holding a selfplay slot); ModelPromoted: reload weights | selfplay.run_worker, selfplay (nudge) | GameCompleted (selfplay) |
| GameCompleted (selfplay)                   | data_gate.on_game_completed       | TrainingRequested                         |
| TrainingRequested (holding a training slot) | trainer.on_training_requested    | TrainingStarted, TrainingCompleted + ModelRegistered / TrainingFailed |
| TrainingCompleted (holding an evaluation slot) | evaluator.on_training_completed | EvaluationStarted, GameCompleted (eval), MatchCompleted, EvaluationCompleted |
| EvalGameRequested (work.eval.*, RINGLOOP_WORK) | tournament.serve (evaluator work) | GameCompleted (eval), MatchCompleted |
| MatchCompleted                             | elo_rater.on_match_completed      | EloUpdated                                |
| EvaluationCompleted                        | promoter.on_evaluation_completed  | ModelPromoted / ModelRejected             |
| EloUpdated                                 | promoter.on_elo_updated           | ModelRolledBack (regression watch)        |
| ModelPromoted, ModelRejected, EloUpdated   | curriculum.on_loop_event          | CurriculumRebalanced                      |
| TrainingCompleted/Failed, EvaluationCompleted, ModelRejected | feedback.on_loop_event | FeedbackSignalRaised            |
| TaskStarted                                | coordinator.on_task_started       | TaskFinished (expired leases)             |

The play stages take leases through coordinator.TaskCoordinator (TaskStarted, TaskFinished,
TaskRefused), bounded by LoopSettings.tasks; a trainer or evaluator refused a slot naks its
input for a later retry, a selfplay worker waits for one.

Readers of the loop's read models: selfplay reads curriculum weights and feedback knobs
(handlers.feedback.knobs), the trainer the batch size knob, the evaluator the registry's
current best. The composition root (ops.app, ops.loop_wiring) binds each handler to its
dependencies and the runtime; every threshold comes from handlers.settings.LoopSettings.
"""

REACTIONS: dict[str, list[str]] = {
    "model.promoted": ["selfplay", "curriculum.on_loop_event"],  # selfplay: reload weights
    "game.completed": ["data_gate.on_game_completed"],
    "training.requested": ["trainer.on_training_requested"],
    "training.completed": ["evaluator.on_training_completed", "feedback.on_loop_event"],
    "eval_game.requested": ["tournament.serve"],  # work items, from RINGLOOP_WORK
    "training.failed": ["feedback.on_loop_event"],
    "match.completed": ["elo_rater.on_match_completed"],
    "evaluation.completed": ["promoter.on_evaluation_completed", "feedback.on_loop_event"],
    "elo.updated": ["promoter.on_elo_updated", "curriculum.on_loop_event"],
    "model.rejected": ["curriculum.on_loop_event", "feedback.on_loop_event"],
    "task.started": ["coordinator.on_task_started"],
}
