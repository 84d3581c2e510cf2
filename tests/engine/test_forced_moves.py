"""The search plays past forced moves: a tree's edge is a move and the moves after it that
leave no choice (a bookkeeping step such as "no line to process"), so no simulation and no
network evaluation goes to a position with one legal move."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from engine import GameConfig, GameState, Move
from engine.players.evaluators import HeuristicEvaluator
from engine.players.gumbel import GumbelSearch
from engine.players.mcts import (
    Node,
    PuctSearch,
    SearchSettings,
    evaluate_leaves,
    play_forced_moves,
    run_search,
)


def _positions(config: str, count: int, seed: int) -> Iterator[GameState]:
    """Positions of random games where the mover has a choice."""
    rng = random.Random(seed)
    found = 0
    while found < count:
        state = GameState.initial(GameConfig.parse(config))
        while not state.is_over and found < count:
            moves = state.legal_moves()
            if len(moves) > 1 and rng.random() < 0.1:
                found += 1
                yield state.copy()
            state.apply_unchecked(rng.choice(moves))


def _after_one_move(config: str, seed: int) -> GameState:
    """A position right after a movement: its next step is forced bookkeeping."""
    rng = random.Random(seed)
    state = GameState.initial(GameConfig.parse(config))
    while True:
        moves = state.legal_moves()
        move = rng.choice(moves)
        state.apply_unchecked(move)
        if state.is_over:
            state = GameState.initial(GameConfig.parse(config))
        elif move.type == "move_stack" and len(state.legal_moves()) == 1:
            return state


def test_forced_moves_are_played_until_a_choice_and_its_moves_returned() -> None:
    state = _after_one_move("square8_2p", 3)
    before = state.move_count
    expected = state.copy()
    while len(moves := expected.legal_moves()) == 1:
        expected.apply_unchecked(moves[0])
    found = play_forced_moves(state)
    assert state.move_count > before and found == expected.legal_moves()
    assert len(found) != 1 and state.zobrist_hash == expected.zobrist_hash


def test_a_finished_game_has_no_moves_to_play() -> None:
    state = _after_one_move("square8_2p", 5)
    while not state.is_over:
        state.apply_unchecked(state.legal_moves()[0])
    assert play_forced_moves(state) == [] and state.is_over


class CountingEvaluator(HeuristicEvaluator):
    """The heuristic's values; records how many legal moves each evaluated state had."""

    def __init__(self) -> None:
        super().__init__()
        self.move_counts: list[int] = []

    def evaluate(self, states: Sequence[GameState]) -> tuple[list[np.ndarray], np.ndarray]:
        self.move_counts += [len(s.legal_moves()) for s in states]
        return super().evaluate(states)


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children.values():
        yield from _nodes(child)


@pytest.mark.parametrize("kind", ["puct", "gumbel"])
@pytest.mark.parametrize("config", ["square8_2p", "square8_3p", "hex8_4p"])
def test_no_search_spends_a_simulation_on_a_position_without_a_choice(
    kind: str, config: str
) -> None:
    evaluator = CountingEvaluator()
    for state in _positions(config, 6, seed=11):
        settings = SearchSettings(simulations=24, kind=kind, temperature=0.0)
        job = (GumbelSearch if kind == "gumbel" else PuctSearch)(state, settings)
        run_search(job, evaluator)
        for node in _nodes(job.tree.root):
            if node.state is not None and not node.state.is_over:
                assert len(node.moves) > 1 and node.moves == node.state.legal_moves()
                assert node.leaf_moves is None  # dropped once expanded
    assert evaluator.move_counts and min(evaluator.move_counts) > 1


def test_the_moves_a_walk_found_are_the_moves_the_leaf_is_evaluated_with() -> None:
    state = next(_positions("square8_2p", 1, seed=4))
    job = PuctSearch(state, SearchSettings(simulations=8))
    run_search(job, HeuristicEvaluator())
    leaf = job.tree.select_leaf()
    path, leaf_state = leaf
    assert path[-1].leaf_moves == leaf_state.legal_moves()
    given: list[list[Move] | None] = [path[-1].leaf_moves]
    evaluation = evaluate_leaves(HeuristicEvaluator(), [leaf_state], given)[0]
    assert evaluation is not None and evaluation[2] is path[-1].leaf_moves
