"""The D1 baseline: a uniformly random legal move."""

from __future__ import annotations

import random

from engine.move import Move
from engine.state import GameState


class RandomPlayer:
    """Picks uniformly among the legal moves."""

    name = "random"

    def select_move(self, state: GameState, rng: random.Random) -> Move:
        moves = state.legal_moves()
        if not moves:
            raise ValueError(f"no legal move in {state!r}")
        return rng.choice(moves)
