"""The named presets of the loop settings: base values a settings file's `preset` selects.

"default" is the real loop (LoopSettings' own defaults); "small" learns on a 2-core CPU
within an hour; "tiny" runs a whole generation of square8_2p within minutes (tests, demos).
A preset is a partial settings document; fields given beside it override it.
"""

from __future__ import annotations

from typing import Any

from events.config import BOARDS

_TINY_NET = {"blocks": 1, "channels": 16}

_SMALL_NET = {"blocks": 2, "channels": 32}
# One host: a training and an evaluation at a time; `up --selfplay-workers N` runs N selfplay.
_ONE_HOST_TASKS = {
    "training": 1,
    "evaluation": 1,
    "selfplay_per_host": 8,
    "lease_ttl_s": 10,
    "renew_every_s": 3,
}

PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    # Sized for learning on a 2-core CPU within an hour: games play to their natural end,
    # search strong enough (32 simulations) that its visit counts teach something.
    "small": {
        "configs": ["square8_2p"],
        "data_gate": {"min_new_games": {"p2": 32, "p3": 40, "p4": 48}, "training_timeout_s": 1800},
        "training": {
            "window_games": 1500,
            "window_generations": 4,
            "networks": {board: _SMALL_NET for board in BOARDS},
            "epochs": 3,
            # warm-started trainings fit a fixed draw of the window, not all of it: 3 passes
            # over a full 1500-game window (~75k positions) took 7 minutes late in an hour
            "max_samples": 20_000,
            "batch_size": 64,
            "learning_rate": 2e-3,
        },
        "selfplay": {
            "simulations": 32,
            "temperature_moves": 12,
            "max_moves": 400,
            "games_per_task": 32,  # continuous batching: 32 games at once fill a CPU's batches
            "parallel_games": {"cpu": 32, "cuda": 256},
        },
        "evaluation": {
            "games": 40,
            "baseline_games": 12,
            # gates search at twice selfplay's budget: one 25-minute run's final model scored
            # 72.5% / 77.5% / 87.5% / 85% against heuristic at 16 / 32 / 64 / 128 simulations
            # (40 games each): at 32 the search, not only the network, held it back
            "simulations": 64,
            "games_per_batch": 20,  # half a gate at once: larger network batches on a CPU
            "sprt": {"elo0": 0.0, "elo1": 80.0, "alpha": 0.1, "beta": 0.1},
        },
        # 40 gate games: the truncated SPRT promotes a +80 Elo candidate 75% of the time
        # (sprt_or_wilson: 42%) and an equal one 24% (8%); `ringloop bench gate`
        "promotion": {
            "head_to_head": "sprt_truncated",
            "floors": {
                "random": {"p2": 0.6, "p3": 0.4, "p4": 0.3},
                "heuristic": {"p2": 0.0, "p3": 0.0, "p4": 0.0},
            },
            "regression_min_games": 12,
        },
        "curriculum": {"target_games": 500, "every_inputs": 8},
        "feedback": {"plateau_evaluations": 4, "promotion_failure_streak": 3},
        "tasks": _ONE_HOST_TASKS,
    },
    "tiny": {
        "configs": ["square8_2p"],
        "data_gate": {"min_new_games": {"p2": 8, "p3": 10, "p4": 12}, "training_timeout_s": 900},
        "training": {
            "window_games": 200,
            "window_generations": 2,
            "networks": {board: _TINY_NET for board in BOARDS},
            "epochs": 2,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "amp": False,
        },
        "selfplay": {
            "simulations": 8,
            "temperature_moves": 8,
            "max_moves": 120,
            "games_per_task": 2,
            "bootstrap_simulations": 8,
            "search": "puct",  # tiny: the quickest whole generation; its learning is not measured
        },
        "evaluation": {
            "games": 12,
            "baseline_games": 4,
            "simulations": 8,
            "games_per_batch": 4,
            "search": "puct",
            "sprt": {"elo0": 0.0, "elo1": 100.0, "alpha": 0.1, "beta": 0.1},
        },
        "promotion": {
            "floors": {
                "random": {"p2": 0.5, "p3": 0.34, "p4": 0.25},
                "heuristic": {"p2": 0.0, "p3": 0.0, "p4": 0.0},
            },
            "regression_min_games": 6,
        },
        "curriculum": {"target_games": 50, "every_inputs": 4},
        "feedback": {"plateau_evaluations": 3, "promotion_failure_streak": 2},
        "tasks": {**_ONE_HOST_TASKS, "ack_wait_s": 3.0},
    },
}
