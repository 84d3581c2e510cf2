"""Tests for engine.players: baselines, MCTS finding wins and beating random, batched network self-play."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from engine.config import GameConfig
from engine.encoding import network_spec
from engine.network import build_network
from engine.players import (
    BatchedSelfplay,
    HeuristicEvaluator,
    HeuristicPlayer,
    HeuristicRootEvaluator,
    HeuristicWeights,
    MCTSPlayer,
    NetworkEvaluator,
    RandomPlayer,
    RolloutEvaluator,
    SearchSettings,
    SearchTree,
    play_game,
    rank_values,
    simulate,
    training_samples,
)
from engine.players.heuristic import move_priors
from engine.players.mcts import choose_move, expand_roots
from engine.players.neural import absolute_to_relative, relative_to_absolute
from engine.state import GameState
from engine.training import train

SQUARE8 = GameConfig("square8", 2)


def _winning_positions(count: int) -> list[tuple[GameState, set]]:
    """Positions from random games where some, not all, of >= 3 legal moves win at once."""
    rng = random.Random(0)
    found = []
    while len(found) < count:
        state = GameState.initial(SQUARE8)
        while not state.is_over and len(found) < count:
            moves = state.legal_moves()
            wins = set()
            for move in moves if len(moves) >= 3 else ():
                after = state.copy()
                after.apply_unchecked(move)
                if after.is_over and after.winner == move.player:
                    wins.add(move)
            if wins and len(wins) < len(moves):
                found.append((state.copy(), wins))
                break
            state.apply_unchecked(rng.choice(moves))
    return found


def _wins_against_random(player, games: int, seed: int) -> int:
    rng = random.Random(seed)
    wins = 0
    for game in range(games):
        seat = game % 2
        seats = [player, RandomPlayer()] if seat == 0 else [RandomPlayer(), player]
        result = play_game(SQUARE8, seats, rng)
        wins += result.finished and result.ranking[seat] == 1
    return wins


def test_rank_values() -> None:
    assert rank_values([1, 2]).tolist() == [1.0, -1.0]
    assert rank_values([2, 3, 1]).tolist() == [0.0, -1.0, 1.0]
    assert rank_values([1, 1, 3, 4]).tolist() == pytest.approx([2 / 3, 2 / 3, -1 / 3, -1.0])


def test_random_player_plays_legal_moves_to_the_end() -> None:
    result = play_game(GameConfig("hex8", 3), [RandomPlayer()] * 3, random.Random(4))
    assert result.finished and sorted(result.ranking)[0] == 1


def test_heuristic_beats_random() -> None:
    # 40 games, seats alternating: at least 75% (a 95% Wilson interval on 30/40 starts at 0.6)
    assert _wins_against_random(HeuristicPlayer(), games=40, seed=1) >= 30


def test_mcts_finds_the_immediate_win() -> None:
    player = MCTSPlayer(HeuristicEvaluator(), SearchSettings(simulations=48, temperature_moves=0))
    for state, wins in _winning_positions(3):
        assert player.select_move(state, random.Random(0)) in wins
        assert (
            player.last_visits is not None and sum(player.last_visits.values()) == 47
        )  # first expands the root


def test_mcts_with_rollouts_finds_the_immediate_win() -> None:
    evaluator = RolloutEvaluator(random.Random(2), max_moves=50)
    player = MCTSPlayer(evaluator, SearchSettings(simulations=24, temperature_moves=0))
    state, wins = _winning_positions(1)[0]
    assert player.select_move(state, random.Random(0)) in wins


def test_mcts_beats_random() -> None:
    player = MCTSPlayer(HeuristicEvaluator(), SearchSettings(simulations=16, temperature_moves=0))
    assert _wins_against_random(player, games=8, seed=2) >= 6  # random vs random: ~4


def test_multiplayer_search_backs_up_a_value_per_seat() -> None:
    config = GameConfig("square8", 3)
    tree = SearchTree(GameState.initial(config), SearchSettings(simulations=8))
    for _ in range(8):
        simulate([tree], HeuristicEvaluator())
    assert tree.root.visit_count == 8 and tree.root.value_sum is not None
    assert tree.root.value_sum.shape == (3,)
    assert sum(tree.visits().values()) == 7  # the first simulation expands the root


def test_root_noise_keeps_a_distribution_and_settings_validate() -> None:
    tree = SearchTree(GameState.initial(SQUARE8), SearchSettings())
    simulate([tree], HeuristicEvaluator())
    before = list(tree.root.priors)
    tree.add_noise(np.random.default_rng(0))
    after = list(tree.root.priors)
    assert sum(after) == pytest.approx(1.0) and after != before
    with pytest.raises(ValueError, match="simulations"):
        SearchSettings(simulations=0)
    with pytest.raises(ValueError, match="dirichlet"):
        SearchSettings(dirichlet_fraction=1.5)


def test_temperature_zero_picks_the_most_visited() -> None:
    moves = GameState.initial(SQUARE8).legal_moves()[:3]
    visits = {moves[0]: 2, moves[1]: 9, moves[2]: 1}
    assert choose_move(visits, 0.0, random.Random(0)) == moves[1]
    drawn = {choose_move(visits, 1.0, random.Random(s)) for s in range(40)}
    assert len(drawn) >= 2


def test_value_seat_conversions_round_trip() -> None:
    values = np.array([0.5, -0.2, 0.1, -1.0])
    relative = absolute_to_relative(values, current_player=3)
    assert relative.tolist() == [0.1, -1.0, 0.5, -0.2]
    assert relative_to_absolute(relative, 3).tolist() == values.tolist()


class _CountingEvaluator:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.batch_sizes: list[int] = []

    def evaluate(self, states):
        self.batch_sizes.append(len(states))
        return self.inner.evaluate(states)


def test_batched_selfplay_batches_leaves_and_yields_soft_training_targets() -> None:
    torch.manual_seed(0)
    model = build_network(network_spec(SQUARE8, blocks=1, channels=8))
    network = NetworkEvaluator(model, device="cpu")
    priors, values = network.evaluate([GameState.initial(SQUARE8)])
    assert priors[0].sum() == pytest.approx(1.0) and values.shape == (1, 2)
    counting = _CountingEvaluator(network)
    selfplay = BatchedSelfplay(
        counting, SQUARE8, games=4, settings=SearchSettings(simulations=4), max_moves=12
    )
    results = selfplay.play(random.Random(0))
    assert len(results) == 4 and max(counting.batch_sizes) == 4
    for result in results:
        result.ranking = [1, 2]  # capped games: pretend player 1 won, to build targets
    samples = [s for r in results for s in training_samples(r)]
    assert samples and all(len(s.policy[0]) >= 1 for s in samples)
    assert any(len(s.policy[0]) > 1 for s in samples)
    report = train(model, samples, epochs=1, batch_size=16, device="cpu", seed=0)
    assert np.isfinite(report.epochs[-1].total)


def test_heuristic_root_priors_favour_winning_moves_and_replace_the_root_priors() -> None:
    state, wins = _winning_positions(1)[0]
    moves = state.legal_moves()
    priors = move_priors(state, HeuristicWeights(), 0.1)
    assert len(priors) == len(moves) and priors.sum() == pytest.approx(1.0)
    assert sum(p for move, p in zip(moves, priors, strict=True) if move in wins) > 0.99
    guided = SearchTree(state, SearchSettings(simulations=4))
    expand_roots([guided], HeuristicRootEvaluator())
    assert list(guided.root.priors) == pytest.approx(list(priors))
    plain = SearchTree(state, SearchSettings(simulations=4))
    expand_roots([plain], HeuristicEvaluator())  # no root priors: uniform stays
    uniform = [1 / len(moves)] * len(moves)
    assert list(plain.root.priors) == pytest.approx(uniform)
    with pytest.raises(ValueError, match=f"{len(moves) + 1} root priors for {len(moves)} root"):
        guided.set_root_priors(np.ones(len(moves) + 1))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        move_priors(state, HeuristicWeights(), 0)
    with pytest.raises(ValueError, match="root_temperature must be > 0, got -1"):
        HeuristicRootEvaluator(root_temperature=-1)


def test_guided_search_plays_the_win_and_reports_its_root_value() -> None:
    state, wins = _winning_positions(1)[0]
    player = MCTSPlayer(
        HeuristicRootEvaluator(), SearchSettings(simulations=8, temperature_moves=0)
    )
    assert player.select_move(state, random.Random(0)) in wins
    tree = player.search(state, random.Random(0))
    assert tree.root.value_sum is not None
    assert tree.root_value() == pytest.approx(tree.root.value_sum / tree.root.visit_count)
    assert tree.root_value()[state.current_player - 1] > 0.5  # a won position for the mover
