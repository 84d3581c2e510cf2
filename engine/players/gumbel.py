"""Gumbel root search (Danihelka et al., ICLR 2022, "Policy improvement by planning with
Gumbel") as a job the selfplay driver advances: Gumbel-top-k at the root, sequential halving
over the simulation budget, the completed-Q improved policy as the training target.

Below the root the tree is the PUCT tree of engine.players.mcts (per-seat values, each node
choosing by the value of its player to act), so 2-4 players are served as PUCT serves them;
the root compares its actions by the root player's value. Without exploration (``noise_rng``
None) the Gumbel draws are zero and the chosen action is deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from engine.move import Move
from engine.players.mcts import (
    Evaluation,
    Leaf,
    RootPriors,
    SearchSettings,
    SearchTree,
    descend,
)
from engine.state import GameState

POLICY_TARGET_TOTAL = 10_000  # the improved policy is recorded as integer weights of this sum
_LOG_FLOOR = 1e-12  # log of a zero prior


def sigma(q: np.ndarray, max_visits: int, settings: SearchSettings) -> np.ndarray:
    """The paper's monotone transform of values in [0, 1]: (c_visit + max N) * c_scale * q."""
    return (settings.gumbel_c_visit + max_visits) * settings.gumbel_c_scale * q


def completed_q(
    q: np.ndarray, visits: np.ndarray, priors: np.ndarray, root_value: float
) -> np.ndarray:
    """Visited actions keep their value; unvisited ones take the mixed value v_mix (the
    network's root value blended with the prior-weighted mean of the visited values)."""
    visited = visits > 0
    total = visits.sum()
    if not visited.any():
        return np.full(len(q), root_value)
    weight = priors[visited].sum()
    mean = float((priors[visited] * q[visited]).sum() / weight) if weight > 0 else q[visited].mean()
    mixed = (root_value + total * mean) / (1 + total)
    return np.where(visited, q, mixed)


def rescaled(values: np.ndarray) -> np.ndarray:
    """Min-max onto [0, 1] (as the paper's implementation does); all equal -> 0."""
    low, high = values.min(), values.max()
    return (values - low) / max(high - low, 1e-8)


class GumbelSearch:
    """One move's Gumbel search. `leaves()`: the root first; then, per sequential-halving
    phase, one leaf under each remaining root action that still has visits due in the phase
    (different subtrees, so they batch without virtual loss); `absorb()` backs them up."""

    def __init__(
        self,
        state: GameState,
        settings: SearchSettings,
        *,
        noise_rng: np.random.Generator | None = None,
        root_priors: RootPriors | None = None,
    ) -> None:
        self.tree = SearchTree(state, settings)
        self.settings = settings
        self.noise_rng = noise_rng
        self.root_priors = root_priors
        self.budget = settings.simulations - 1  # the first simulation expands the root
        self.root_value = 0.0
        self.moves: list[Move] = []
        self.logits = np.zeros(0)
        self.gumbel = np.zeros(0)
        self.remaining: list[int] = []  # indices into self.moves still in the halving
        self.phase_visits: dict[int, int] = {}
        self.per_phase = 0
        self.phases_left = 0

    @property
    def done(self) -> bool:
        return self.tree.root.expanded and (self.budget <= 0 or len(self.remaining) <= 1)

    # ---- the driver's side ------------------------------------------------------------
    def leaves(self) -> list[Leaf]:
        if not self.tree.root.expanded:
            return [self.tree.select_leaf()]
        due = [a for a in self.remaining if self.phase_visits[a] < self.per_phase]
        return [self._leaf_under(a) for a in due[: self.budget]]

    def absorb(self, leaves: Sequence[Leaf], evaluations: Sequence[Evaluation]) -> None:
        rooted = self.tree.root.expanded
        for (path, state), evaluation in zip(leaves, evaluations, strict=True):
            priors, values, moves = (
                evaluation if evaluation is not None else (np.zeros(0), None, None)
            )
            self.tree.expand(path, state, priors, moves)
            self.tree.backup(path, values if values is not None else np.zeros(state.num_players))
            if not rooted and values is not None:
                self.root_value = float(values[self.tree.state.current_player - 1])
            if rooted:
                self.phase_visits[path[1].slot] += 1
                self.budget -= 1
        if not rooted:
            self._start()
        elif all(self.phase_visits[a] >= self.per_phase for a in self.remaining):
            self._halve()

    # ---- sequential halving -----------------------------------------------------------
    def _start(self) -> None:
        root = self.tree.root
        if not root.moves:  # a terminal root: nothing to choose
            self.budget = 0
            return
        if self.root_priors is not None:
            self.tree.set_root_priors(self.root_priors.root_priors(self.tree.state))
        self.moves = root.moves
        priors = root.priors
        self.logits = np.log(np.maximum(priors, _LOG_FLOOR))
        count = len(self.moves)
        self.gumbel = (
            self.noise_rng.gumbel(size=count) if self.noise_rng is not None else np.zeros(count)
        )
        considered = min(self.settings.gumbel_considered, count, max(self.budget, 1))
        order = np.argsort(-(self.gumbel + self.logits), kind="stable")
        self.remaining = [int(a) for a in order[:considered]]
        self.phases_left = max(1, math.ceil(math.log2(considered))) if considered > 1 else 1
        self._begin_phase()

    def _begin_phase(self) -> None:
        share = self.budget // (self.phases_left * max(len(self.remaining), 1))
        self.per_phase = max(1, share)
        self.phase_visits = {a: 0 for a in self.remaining}

    def _halve(self) -> None:
        """Keep the better half of the remaining actions by g + logits + sigma(q)."""
        scores = self._scores()
        ranked = sorted(self.remaining, key=lambda a: -scores[a])
        self.remaining = ranked[: max(1, math.ceil(len(ranked) / 2))]
        self.phases_left = max(1, self.phases_left - 1)
        if self.budget > 0 and len(self.remaining) > 1:
            self._begin_phase()

    # ---- values ---------------------------------------------------------------------
    def _leaf_under(self, action: int) -> Leaf:
        root = self.tree.root
        return descend(
            [root],
            lambda node: action if node is root else self.tree._select_slot(node),
            self.settings.skip_forced_moves,
        )

    def _visits_and_q(self) -> tuple[np.ndarray, np.ndarray]:
        root = self.tree.root
        return root.child_visits, root.child_means(self.tree.state.current_player)

    def _sigma_completed(self) -> np.ndarray:
        visits, q = self._visits_and_q()
        priors = np.exp(self.logits)
        completed = completed_q(q, visits, priors / priors.sum(), self.root_value)
        return sigma(rescaled(completed), int(visits.max(initial=0)), self.settings)

    def _scores(self) -> np.ndarray:
        return self.gumbel + self.logits + self._sigma_completed()

    def improved_policy(self) -> np.ndarray:
        """softmax(logits + sigma(completed Q)) over the root's legal moves."""
        z = self.logits + self._sigma_completed()
        exp = np.exp(z - z.max())
        return exp / exp.sum()

    def choose(self, rng: random.Random | None = None) -> tuple[Move, dict[Move, int]]:
        """The move (the halving's winner: among the remaining actions with the most
        visits, the best g + logits + sigma(q)) and the improved policy as integer weights.

        Without Gumbel draws (not exploring) the winner is deterministic, except in the
        first ``temperature_moves`` moves, where a move is drawn from the improved policy
        with ``rng`` when one is given (so gating games differ, as PUCT's do)."""
        if not self.moves:
            raise ValueError("a Gumbel search of a finished game has no move to choose")
        visits, _ = self._visits_and_q()
        scores = self._scores()
        most = max(visits[a] for a in self.remaining)
        best = max((a for a in self.remaining if visits[a] == most), key=lambda a: scores[a])
        policy = self.improved_policy()
        opening = self.tree.state.move_count < self.settings.temperature_moves
        if rng is not None and self.noise_rng is None and opening and self.settings.temperature > 0:
            best = rng.choices(range(len(self.moves)), weights=policy.tolist())[0]
        weights = np.rint(policy * POLICY_TARGET_TOTAL).astype(np.int64)
        weights[best] = max(int(weights[best]), 1)  # the played move is always in the target
        target = {m: int(w) for m, w in zip(self.moves, weights, strict=True) if w > 0}
        return self.moves[best], target
