"""Evaluators the search consults: priors over legal moves and values per player, batched over states."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from engine.players.base import terminal_values
from engine.players.heuristic import HeuristicWeights, heuristic_values, move_priors
from engine.state import GameState


class Evaluator(Protocol):
    """``evaluate(states)`` -> (priors per state aligned with ``state.legal_moves()``,
    values of shape (len(states), num_players), index 0 = player 1, each in [-1, 1])."""

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]: ...


def uniform_priors(state: GameState) -> np.ndarray:
    count = len(state.legal_moves())
    return np.full(count, 1.0 / count) if count else np.zeros(0)


class RolloutEvaluator:
    """Uniform priors; values from one random playout per state (capped at ``max_moves``)."""

    def __init__(self, rng: random.Random, *, max_moves: int = 400) -> None:
        if max_moves < 1:
            raise ValueError(f"max_moves must be >= 1, got {max_moves!r}")
        self.rng = rng
        self.max_moves = max_moves

    def _playout(self, state: GameState) -> np.ndarray:
        state = state.copy()
        for _ in range(self.max_moves):
            if state.is_over:
                return terminal_values(state)
            state.apply_unchecked(self.rng.choice(state.legal_moves()))
        return (
            heuristic_values(state, HeuristicWeights())
            if not state.is_over
            else terminal_values(state)
        )

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]:
        priors = [uniform_priors(s) for s in states]
        return priors, np.array([self._playout(s) for s in states])


class HeuristicEvaluator:
    """Uniform priors; values from the heuristic evaluation (no playout)."""

    def __init__(self, weights: HeuristicWeights | None = None) -> None:
        self.weights = weights or HeuristicWeights()

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]:
        priors = [uniform_priors(s) for s in states]
        return priors, np.array([heuristic_values(s, self.weights) for s in states])


class HeuristicRootEvaluator(HeuristicEvaluator):
    """Heuristic values everywhere; at the search root, priors from scoring each legal move.

    The root's priors are ``softmax(one-ply score / root_temperature)`` (see
    ``heuristic.move_priors``), so a small search spends its visits on the moves the
    heuristic ranks high instead of spreading them uniformly: its visit counts then carry
    the heuristic's preferences plus what the search found. Costs one heuristic scoring
    of every legal move per searched position (a few ms on square8), nodes below the root
    keep uniform priors.
    """

    def __init__(
        self, weights: HeuristicWeights | None = None, *, root_temperature: float = 0.1
    ) -> None:
        super().__init__(weights)
        if root_temperature <= 0:
            raise ValueError(f"root_temperature must be > 0, got {root_temperature!r}")
        self.root_temperature = root_temperature

    def root_priors(self, state: GameState) -> np.ndarray:
        return move_priors(state, self.weights, self.root_temperature)
