"""Gumbel root search: finds a move that wins at once with 8-16 simulations under a prior
that misleads PUCT at the same budget (2, 3 and 4 players); its improved policy; the batched
search jobs (virtual loss) and the continuous-batching driver's determinism."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from engine import GameConfig, GameState, Move
from engine.players.evaluators import HeuristicEvaluator
from engine.players.gumbel import POLICY_TARGET_TOTAL, GumbelSearch, completed_q
from engine.players.mcts import PuctSearch, SearchSettings, run_search

# (config, seed, ply, simulations): replaying random.Random(seed) choices for `ply` moves
# reaches a position whose mover has exactly one move that ends the game with the mover
# first (a stack move, territory choices). With fewer legal moves than the budget's child
# visits, Gumbel-top-k considers every move, the misleading prior's last one included.
WINNING_POSITIONS = [
    ("square8_2p", 79, 130, 16),  # 14 legal moves
    ("square8_2p", 5, 127, 8),  # 5
    ("square8_3p", 219, 117, 16),  # 10
    ("square8_3p", 5, 121, 8),  # 4
    ("square8_4p", 112, 149, 16),  # 10
    ("square8_4p", 1, 96, 8),  # 5
]


def replayed(config: str, seed: int, ply: int) -> GameState:
    rng, state = random.Random(seed), GameState.initial(GameConfig.parse(config))
    while state.move_count < ply:
        state.apply_unchecked(rng.choice(state.legal_moves()))
    return state


def winning_moves(state: GameState) -> list[Move]:
    found = []
    for move in state.legal_moves():
        after = state.copy()
        after.apply_unchecked(move)
        if after.is_over and after.winner == state.current_player:
            found.append(move)
    return found


class MisleadingEvaluator:
    """Values 0 everywhere; priors that play down each move which wins at once (weight 0.05
    against 1 for every other move), so only trying the move shows what it is worth."""

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]:
        priors = []
        for state in states:
            wins = set(winning_moves(state))
            weights = np.array([0.05 if m in wins else 1.0 for m in state.legal_moves()])
            priors.append(weights / weights.sum())
        return priors, np.zeros((len(states), states[0].num_players if states else 2))


@pytest.mark.parametrize(("config", "seed", "ply", "simulations"), WINNING_POSITIONS)
def test_gumbel_finds_the_winning_move_puct_misses(
    config: str, seed: int, ply: int, simulations: int
) -> None:
    state = replayed(config, seed, ply)
    wins = winning_moves(state)
    assert len(wins) == 1 and 4 <= len(state.legal_moves()) < simulations, "position drifted"
    evaluator = MisleadingEvaluator()
    gumbel = GumbelSearch(state, SearchSettings(simulations=simulations, kind="gumbel"))
    run_search(gumbel, evaluator)
    move, target = gumbel.choose()
    assert move == wins[0]
    assert max(target, key=lambda m: target[m]) == wins[0]  # the improved policy agrees

    puct = PuctSearch(state, SearchSettings(simulations=simulations, temperature=0.0))
    run_search(puct, evaluator)
    puct_move, visits = puct.choose(random.Random(0))
    assert puct_move != wins[0] and visits[wins[0]] == 0


def test_gumbel_without_noise_is_deterministic_and_with_noise_explores() -> None:
    state = GameState.initial(GameConfig.parse("square8_2p"))  # many legal placements
    settings = SearchSettings(simulations=8, kind="gumbel")

    def choice(noise: np.random.Generator | None) -> Move:
        job = GumbelSearch(state, settings, noise_rng=noise)
        run_search(job, HeuristicEvaluator())
        return job.choose()[0]

    assert len({choice(None) for _ in range(3)}) == 1
    noisy = {choice(np.random.default_rng(seed)) for seed in range(12)}
    assert len(noisy) > 1  # Gumbel draws vary the considered set on a near-uniform prior


def test_improved_policy_is_a_distribution_recorded_as_integer_weights() -> None:
    state = replayed(*WINNING_POSITIONS[2][:3])
    job = GumbelSearch(state, SearchSettings(simulations=12, kind="gumbel"))
    run_search(job, HeuristicEvaluator())
    policy = job.improved_policy()
    assert policy.shape == (len(state.legal_moves()),)
    assert np.isclose(policy.sum(), 1.0) and (policy > 0).all()
    move, target = job.choose()
    assert move in target and set(target) <= set(state.legal_moves())
    assert abs(sum(target.values()) - POLICY_TARGET_TOTAL) <= len(target)


def test_completed_q_mixes_unvisited_actions() -> None:
    q = np.array([0.5, 0.0, -1.0])
    visits = np.array([2.0, 0.0, 1.0])
    priors = np.array([0.5, 0.25, 0.25])
    done = completed_q(q, visits, priors, root_value=0.1)
    mixed = (0.1 + 3 * (0.5 * 0.5 + 0.25 * -1.0) / 0.75) / 4
    assert done[0] == 0.5 and done[2] == -1.0 and np.isclose(done[1], mixed)


def test_virtual_loss_hands_out_distinct_leaves_and_leaves_no_residue() -> None:
    state = replayed(*WINNING_POSITIONS[0][:3])
    settings = SearchSettings(simulations=33, leaves_per_tree=8, dirichlet_fraction=0.0)
    job = PuctSearch(state, settings)
    evaluator = HeuristicEvaluator()
    run_search(job, evaluator)
    root = job.tree.root
    assert root.visit_count == 33 and sum(job.tree.visits().values()) == 32
    visited = root.child_visits > 0
    means = root.child_values[visited] / root.child_visits[visited, None]
    assert np.all(np.abs(means) <= 1.0 + 1e-9)  # no virtual loss left in the sums
    total = root.child_values.sum(axis=0) + _root_first(job)
    assert root.value_sum is not None and np.allclose(total, root.value_sum)
    for slot, child in root.children.items():
        assert child.visit_count == root.child_visits[slot]

    fresh = PuctSearch(state, settings)
    fresh.absorb(fresh.leaves(), [_evaluation(evaluator, s) for _, s in fresh.leaves()])
    batch = fresh.leaves()
    assert len(batch) > 1 and len({id(path[-1]) for path, _ in batch}) == len(batch)


def _root_first(job: PuctSearch) -> np.ndarray:
    """The value the root's own (first) simulation backed up: its heuristic evaluation."""
    return HeuristicEvaluator().evaluate([job.tree.state])[1][0]


def _evaluation(
    evaluator: HeuristicEvaluator, state: GameState
) -> tuple[np.ndarray, np.ndarray, list[Move]]:
    priors, values = evaluator.evaluate([state])
    return priors[0], values[0], state.legal_moves()
