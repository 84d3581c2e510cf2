"""The AI service's settings, each defined once: where it listens and what each difficulty plays.

RingRift's game server asks for a move at a difficulty of 1 to 10. `ringloop serve` maps it
to a player: 1 and 2 are the direct baselines, 3 to 10 a PUCT search whose budget doubles
per step, over the config's current best model (or, when the config has none yet, over the
heuristic evaluator: the ladder's mcts-<N> tier of engine.tiers).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001  # RingRift's AIServiceClient default (AI_SERVICE_URL=http://localhost:8001)
MIN_DIFFICULTY, MAX_DIFFICULTY = 1, 10
DEFAULT_DIFFICULTY = 5  # RingRift's MoveRequest default
MAX_BATCH = 64  # requests in one POST /ai/moves_batch
TORCH_THREADS = 1  # per process: the search is the bottleneck, thread pools only contend


@dataclass(frozen=True)
class Budget:
    """What one difficulty plays: a direct player (simulations 0) or a search of N simulations."""

    difficulty: int
    player: str  # "random", "heuristic" or "search"
    simulations: int = 0


DIFFICULTY_BUDGETS: dict[int, Budget] = {
    1: Budget(1, "random"),
    2: Budget(2, "heuristic"),
    3: Budget(3, "search", 16),
    4: Budget(4, "search", 32),
    5: Budget(5, "search", 64),
    6: Budget(6, "search", 128),
    7: Budget(7, "search", 256),
    8: Budget(8, "search", 512),
    9: Budget(9, "search", 1024),
    10: Budget(10, "search", 2048),
}
