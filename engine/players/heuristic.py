"""The D2 baseline: a one-ply greedy player over a hand-weighted evaluation (weights in one dataclass)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from engine import movegen
from engine.move import Move
from engine.players.base import terminal_values
from engine.state import GameState


@dataclass(frozen=True)
class HeuristicWeights:
    """Every weight of the evaluation, per player feature (each feature scaled to about [0, 1])."""

    eliminated: float = 6.0  # rings eliminated with credit / victory threshold
    territory: float = 6.0  # collapsed cells owned / territory minimum
    material: float = 2.0  # own rings in hand and on board / rings per player
    stacks: float = 0.6  # controlled stacks / 10
    caps: float = 0.8  # summed cap heights of controlled stacks / 10
    markers: float = 0.3  # own markers / 10
    line_threats: float = 0.8  # runs of own markers one short of a line / 3
    mobility: float = 0.5  # controlled stacks that can move or capture / controlled stacks
    value_scale: float = 0.5  # tanh scale turning a score gap into a value in [-1, 1]
    win: float = 1000.0  # bonus for a won game (minus for a lost one)


def _line_threats(state: GameState, player: int) -> int:
    """Runs of exactly line_length - 1 own markers along a line axis."""
    g = state.geometry
    need = state.line_length - 1
    count = 0
    for cell in g.cells:
        if state.marker(cell) != player:
            continue
        for axis in g.line_axes:
            back = g.step[cell][g.opposite[axis]]
            if back >= 0 and state.marker(back) == player:
                continue
            run = 1
            for x in g.rays[cell][axis]:
                if state.marker(x) != player:
                    break
                run += 1
            count += run == need
    return count


def player_features(state: GameState, player: int) -> dict[str, float]:
    """The scaled feature values of one player."""
    controlled = [c for c in state.geometry.cells if state.controller(c) == player]
    mobile = sum(movegen.stack_has_action(state, c) for c in controlled)
    markers = sum(state.marker(c) == player for c in state.geometry.cells)
    return {
        "eliminated": state.eliminated_rings(player) / state.victory_threshold,
        "territory": state.territory(player) / state.territory_minimum,
        "material": (state.rings_in_hand(player) + state.rings_on_board(player))
        / state.rings_per_player,
        "stacks": len(controlled) / 10.0,
        "caps": sum(state.cap_height(c) for c in controlled) / 10.0,
        "markers": markers / 10.0,
        "line_threats": _line_threats(state, player) / 3.0,
        "mobility": mobile / len(controlled) if controlled else 0.0,
    }


def player_scores(state: GameState, weights: HeuristicWeights) -> np.ndarray:
    """Weighted score per player (index 0 = player 1)."""
    scores = []
    for player in range(1, state.num_players + 1):
        features = player_features(state, player)
        scores.append(sum(getattr(weights, name) * value for name, value in features.items()))
    return np.array(scores)


def heuristic_values(state: GameState, weights: HeuristicWeights) -> np.ndarray:
    """Values per player in [-1, 1]: tanh of each score's gap to the mean of the others."""
    if state.is_over:
        return terminal_values(state)
    scores = player_scores(state, weights)
    others = (scores.sum() - scores) / (len(scores) - 1)
    return np.tanh(weights.value_scale * (scores - others))


def move_score(state: GameState, move: Move, weights: HeuristicWeights) -> float:
    """The mover's score after ``move`` minus the best other player's (± ``win`` if it ends the game)."""
    after = state.copy()
    after.apply_unchecked(move)
    if after.is_over:
        return weights.win * float(terminal_values(after)[move.player - 1])
    scores = player_scores(after, weights)
    mine = scores[move.player - 1]
    return float(mine - max(np.delete(scores, move.player - 1)))


def move_priors(state: GameState, weights: HeuristicWeights, temperature: float) -> np.ndarray:
    """A distribution over ``state.legal_moves()``: softmax of each move's one-ply score / T."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    moves = state.legal_moves()
    if not moves:
        return np.zeros(0)
    scores = np.array([move_score(state, move, weights) for move in moves]) / temperature
    weights_ = np.exp(scores - scores.max())
    return weights_ / weights_.sum()


class HeuristicPlayer:
    """Applies each candidate move and keeps the one whose position scores best for the mover.

    With more than ``max_candidates`` legal moves a uniform sample of that many is scored.
    """

    name = "heuristic"

    def __init__(
        self, weights: HeuristicWeights | None = None, *, max_candidates: int = 48
    ) -> None:
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates!r}")
        self.weights = weights or HeuristicWeights()
        self.max_candidates = max_candidates

    def _score(self, state: GameState, move: Move) -> float:
        return move_score(state, move, self.weights)

    def select_move(self, state: GameState, rng: random.Random) -> Move:
        moves = state.legal_moves()
        if len(moves) == 1:
            return moves[0]
        if len(moves) > self.max_candidates:
            moves = rng.sample(moves, self.max_candidates)
        best, best_score = [], -math.inf
        for move in moves:
            score = self._score(state, move)
            if score > best_score + 1e-9:
                best, best_score = [move], score
            elif abs(score - best_score) <= 1e-9:
                best.append(move)
        return rng.choice(best)
