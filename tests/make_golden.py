"""Writes events/golden/<type>.v<version>.json; run once per new event version (never rewrite old ones)."""
# ruff: noqa: F403, F405

import json
from pathlib import Path

from events import *
from events.catalogue import *

E = dict(
    event_id="01a21c7b-e27a-791d-8142-fa95aa057bbc",
    occurred_at="2026-11-27T10:00:00Z",
    causation_id="01a21c7b-e27a-791d-8142-fa95aa057bb0",
    correlation_id="01a21c7b-e27a-791d-8142-fa95aa0500aa",
    producer={"name": "golden", "host": "golden-host", "pid": 42},
)
SHA = "ab" * 32
ART = {"bucket": "ringloop-models", "name": "square8_2p/m-0001.pt", "sha256": SHA, "size": 123456}
RANGE = {
    "stream": "RINGLOOP_GAMES",
    "subject": "games.square8.2p.selfplay",
    "first_seq": 1,
    "last_seq": 50,
    "count": 50,
}
examples = [
    GameCompleted(
        **E,
        config="square8_2p",
        purpose="selfplay",
        game_id="g-1",
        seats=[
            {"seat": 1, "participant_id": "m-0001", "model_sha256": SHA},
            {"seat": 2, "participant_id": "m-0001", "model_sha256": SHA},
        ],
        winner=1,
        ranking=[1, 2],
        moves=["p:27x1", "p:36x1"],
        visits=[{"p:27x1": 12, "p:28x1": 4}, {"p:36x1": 16}],
        root_values=[[0.125, -0.125], None],
        model_id="m-0001",
        generation=1,
        seed=7,
        duration_s=1.5,
    ),
    TrainingRequested(
        **E,
        config="square8_2p",
        training_id="t-1",
        games=RANGE,
        parent_model_id="m-0001",
        generation=2,
    ),
    TrainingStarted(
        **E, config="square8_2p", training_id="t-1", parent_model_id="m-0001", device="cpu"
    ),
    TrainingCompleted(
        **E,
        config="square8_2p",
        training_id="t-1",
        model_id="m-0002",
        artifact=ART,
        parent_model_id="m-0001",
        losses=[
            {"epoch": 1, "policy_loss": 2.5, "value_loss": 0.9},
            {"epoch": 2, "policy_loss": 2.1, "value_loss": 0.8},
        ],
        samples=6400,
        samples_per_s=2100.0,
        duration_s=3.1,
        data=RANGE,
        generation=2,
    ),
    TrainingFailed(
        **E,
        config="square8_2p",
        training_id="t-1",
        reason="refused_random_init",
        error="config square8_2p has best model m-0001; refusing to train from random weights",
    ),
    EvaluationStarted(
        **E,
        config="square8_2p",
        evaluation_id="e-1",
        candidate="m-0002",
        opponents=["m-0001", "random", "heuristic"],
        games={"m-0001": 40, "random": 12, "heuristic": 12},
    ),
    EvaluationCompleted(
        **E,
        config="square8_2p",
        evaluation_id="e-1",
        candidate="m-0002",
        results=[
            {
                "opponent": "m-0001",
                "games": 40,
                "wins": 25,
                "losses": 14,
                "draws": 1,
                "score": 0.6375,
                "wilson_low": 0.48,
                "wilson_high": 0.77,
                "sprt": "accept",
                "llr": 2.95,
            }
        ],
        decided_early=True,
    ),
    EvalGameRequested(
        **E,
        config="square8_2p",
        context="evaluation",
        tournament_id="t-1",
        game_index=3,
        seats=[
            {"participant_id": "m-0002", "kind": "model", "artifact": ART},
            {"participant_id": "heuristic", "kind": "tier"},
        ],
        seed=1234,
    ),
    MatchCompleted(
        **E,
        config="square8_2p",
        match_id="e-1/3",
        participants=[
            {
                "participant_id": "m-0002",
                "rank": 1,
                "seat": 1,
                "model_sha256": SHA,
                "config": "square8_2p",
            },
            {"participant_id": "random", "rank": 2, "seat": 2},
        ],
        game_id="g-9",
        game_subject="games.square8.2p.eval",
        context="evaluation",
        context_id="e-1",
    ),
    EloUpdated(
        **E,
        config="square8_2p",
        match_id="e-1/3",
        changes=[
            {
                "participant_id": "sha256:abababababababab",
                "before": 1500.0,
                "after": 1502.4,
                "rank": 1,
            },
            {"participant_id": "random", "before": 400.0, "after": 400.0, "rank": 2},
        ],
        k_factor=32.0,
    ),
    ModelRegistered(
        **E,
        config="square8_2p",
        model_id="m-0002",
        artifact=ART,
        parent_model_id="m-0001",
        training_id="t-1",
        generation=2,
        metadata={"blocks": 2, "channels": 32},
    ),
    ModelPromoted(
        **E,
        config="square8_2p",
        model_id="m-0002",
        gate="sprt_head_to_head",
        statistic=2.95,
        threshold=2.94,
        reason="SPRT accepted against m-0001",
        evaluation_id="e-1",
        previous_best="m-0001",
        generation=2,
    ),
    ModelRejected(
        **E,
        config="square8_2p",
        model_id="m-0003",
        gate="floor_vs_heuristic",
        statistic=0.41,
        threshold=0.5,
        reason="score 0.41 vs heuristic below floor 0.50",
        evaluation_id="e-2",
    ),
    ModelRolledBack(
        **E,
        config="square8_2p",
        model_id="m-0002",
        gate="regression_watch",
        statistic=-64.0,
        threshold=-50.0,
        reason="Elo 64 below predecessor m-0001",
        restored_model_id="m-0001",
    ),
    ModelRetired(
        **E, config="square8_2p", model_id="m-0001", reason="superseded for 5 generations"
    ),
    CurriculumRebalanced(
        **E,
        weights={"square8_2p": 0.6, "hex8_2p": 0.4},
        inputs={
            "square8_2p": {
                "elo_gap": 300.0,
                "data_deficit": 0.2,
                "recent_win_rate": 0.55,
                "boost": 0.0,
            },
            "hex8_2p": {
                "elo_gap": 100.0,
                "data_deficit": 0.0,
                "recent_win_rate": None,
                "boost": 0.1,
            },
        },
        min_weight=0.05,
        max_weight=0.6,
    ),
    FeedbackSignalRaised(
        **E,
        config="square8_2p",
        signal="plateau",
        knob="dirichlet_fraction",
        old_value=0.25,
        new_value=0.3,
        evidence={"evaluations_without_promotion": 4},
    ),
    TaskStarted(
        **E,
        task_id="task-1",
        task_type="training",
        lease_key="training.square8_2p",
        holder="host-a:123",
        fencing_token=7,
    ),
    TaskFinished(**E, task_id="task-1", task_type="training", outcome="succeeded"),
    TaskRefused(
        **E,
        task_type="loop",
        reason="an improvement loop already runs on this cluster",
        holder="host-a:123",
    ),
    DaemonStarted(**E, daemon="selfplay"),
    DaemonStopped(**E, daemon="selfplay", reason="SIGTERM"),
    DaemonHeartbeat(**E, daemon="selfplay", stats={"games_per_s": 1.5}),
    HostOnline(**E, host="host-a", cpus=16, gpus=["NVIDIA H100"]),
    HostOffline(**E, host="host-a", reason="shutdown"),
    HandlerFailed(
        **E,
        handler="elo-rater",
        error_type="EventDecodeError",
        error="cannot decode event '{\"oops\": 1}': <root>: ...",
        input_stream="RINGLOOP_LOG",
        input_seq=12,
        input_subject="loop.match.completed.square8_2p",
        input_event_id=None,
        input_excerpt='{"oops": 1}',
        deliveries=1,
    ),
]
assert {type(e) for e in examples} == set(EVENT_TYPES)
out = Path("events/golden")
for e in examples:
    (out / f"{e.type}.v{e.version}.json").write_text(
        json.dumps(json.loads(encode(e)), indent=2) + "\n"
    )
old = {
    "type": "match.completed",
    "version": 1,
    **E,
    "config": "hex8_3p",
    "match_id": "legacy-1",
    "participants": ["a", "b", "c"],
    "winner": "b",
}
(out / "match.completed.v1.json").write_text(json.dumps(old, indent=2) + "\n")
print(len(list(out.iterdir())))
