"""Tests for engine.encoding: plane shapes, move <-> index round trips and symmetry equivariance."""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine.config import ALL_CONFIGS, GameConfig
from engine.encoding import (
    encode_state,
    index_to_move,
    layout,
    legal_policy_mask,
    move_indices,
    move_to_index,
)
from engine.geometry import geometry
from engine.move import PLACE_RING, Move
from engine.state import GameState
from engine.symmetry import (
    policy_permutation,
    symmetries,
    symmetry_augmenter,
    transform_planes,
    transform_policy,
)
from engine.training import Sample, policy_target


def _random_states(config: GameConfig, seed: int, count: int, max_moves: int) -> list[GameState]:
    """States sampled along random games (restarting when a game ends)."""
    rng = random.Random(seed)
    state = GameState.initial(config)
    out = []
    while len(out) < count:
        for _ in range(rng.randint(1, max_moves)):
            if state.is_over:
                state = GameState.initial(config)
            state.apply_unchecked(rng.choice(state.legal_moves()))
        if not state.is_over:
            out.append(state.copy())
    return out


def _transformed_state(state: GameState, cell_map: np.ndarray) -> GameState:
    """The symmetric position, built by moving every per-cell field through ``cell_map``.

    The rules engine has no public transform; this reaches into its per-cell lists.
    """
    image = state.copy()
    for name in ("_stacks", "_markers", "_collapsed"):
        source = getattr(state, name)
        target = list(source)
        for cell, value in enumerate(source):
            target[int(cell_map[cell])] = value
        setattr(image, name, target)
    for name in ("must_move", "chain_pos"):
        cell = getattr(state, name)
        setattr(image, name, int(cell_map[cell]) if cell >= 0 else cell)
    if state.pending_region is not None:
        image.pending_region = tuple(sorted(int(cell_map[c]) for c in state.pending_region))
    return image


def _index_set(state: GameState) -> set[int]:
    return {i for move in state.legal_moves() for i in move_indices(state, move)}


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_plane_and_policy_shapes(config: GameConfig) -> None:
    lay = layout(config)
    state = GameState.initial(config)
    planes = encode_state(state)
    assert planes.shape == (lay.in_planes, lay.height, lay.width) and planes.dtype == np.float32
    assert planes[0].sum() == config.total_cells
    mask = legal_policy_mask(state)
    assert mask.shape == (lay.policy_size,) and mask.sum() == len(_index_set(state))


SYMMETRY_CASES = [
    (GameConfig("square8", 2), 40, 60),
    (GameConfig("square8", 3), 25, 80),
    (GameConfig("hex8", 2), 40, 60),
    (GameConfig("hex8", 4), 25, 80),
    (GameConfig("square19", 2), 4, 80),
    (GameConfig("hexagonal", 3), 3, 80),
]


@pytest.mark.parametrize("config,count,max_moves", SYMMETRY_CASES, ids=lambda v: str(v))
def test_symmetric_state_has_symmetric_legal_indices(config, count, max_moves) -> None:
    syms = symmetries(config.board)
    assert len(syms) == (12 if config.board.startswith("hex") else 8)
    rng = random.Random(1)
    phases = set()
    for state in _random_states(config, seed=11, count=count, max_moves=max_moves):
        phases.add(state.phase)
        original = np.array(sorted(_index_set(state)))
        planes = encode_state(state)
        for index in rng.sample(range(1, len(syms)), 3):
            image = _transformed_state(state, syms[index].cell)
            expected = set(policy_permutation(config, index)[original].tolist())
            assert _index_set(image) == expected, (state.phase, syms[index].name)
            assert np.array_equal(encode_state(image), transform_planes(planes, config, index))
    assert len(phases) >= 2


DECISIONS = {
    "process_line",
    "choose_line_option",
    "choose_territory_option",
    "eliminate_rings_from_stack",
}


def test_line_and_territory_decisions_are_unique_and_symmetric() -> None:
    """Random 3-player games reach line/territory decisions: unique slots, symmetric images."""
    config = GameConfig("square8", 3)
    seen = set()
    # seed 2: a sample that reaches an overlength line (choose_line_option) in 3p games
    for state in _random_states(config, seed=2, count=400, max_moves=40):
        moves = state.legal_moves()
        seen.update(m.type for m in moves)
        if DECISIONS & {m.type for m in moves}:
            original = sorted(_index_set(state))
            for index, sym in enumerate(symmetries(config.board)[1:], 1):
                expected = set(policy_permutation(config, index)[original].tolist())
                assert _index_set(_transformed_state(state, sym.cell)) == expected
        slots = [move_indices(state, m) for m in moves if m.type != "recovery_slide"]
        flat = [i for indices in slots for i in indices]
        if not any(m.type == "choose_territory_option" for m in moves):
            assert len(flat) == len(set(flat)), state.phase
    assert {"place_ring", "move_stack", "overtaking_capture"} | DECISIONS <= seen


def test_index_round_trip_on_random_states() -> None:
    for config in (GameConfig("square8", 2), GameConfig("hex8", 3)):
        for state in _random_states(config, seed=3, count=20, max_moves=50):
            for move in state.legal_moves():
                found = index_to_move(state, move_to_index(state, move))
                assert move_to_index(state, found) == move_to_index(state, move)
                if move.type != "recovery_slide":
                    assert found == move or found.type == "choose_territory_option"
    state = GameState.initial(GameConfig("square8", 2))
    with pytest.raises(ValueError, match="no legal move"):
        index_to_move(state, layout(state.config).policy_size - 1)


def test_symmetry_augmenter_keeps_targets_on_legal_slots() -> None:
    config = GameConfig("hex8", 2)
    state = _random_states(config, seed=2, count=1, max_moves=30)[0]
    moves = state.legal_moves()
    visits = {move_to_index(state, m): i + 1 for i, m in enumerate(moves[:5])}
    mask = legal_policy_mask(state)
    sample = Sample(encode_state(state), policy_target(visits=visits), [0.0, 0.0], legal_mask=mask)
    augment = symmetry_augmenter(config)
    rng = np.random.default_rng(0)
    for _ in range(10):
        moved = augment(sample, rng)
        assert moved.legal_mask is not None and moved.legal_mask[moved.policy[0]].all()
        assert sorted(moved.policy[1]) == pytest.approx(sorted(sample.policy[1]))


@pytest.mark.parametrize("board", ["square8", "hex8"])
def test_transform_policy_moves_each_slot_to_its_image_and_has_an_inverse(board: str) -> None:
    config = GameConfig(board, 2)
    lay, g = layout(config), geometry(board)
    syms = symmetries(board)
    vector = np.arange(lay.policy_size, dtype=np.float32)
    images = [transform_policy(vector, config, index) for index in range(len(syms))]
    assert np.array_equal(images[0], vector)  # index 0 is the identity
    for index, sym in enumerate(syms):
        for cell in (0, g.cells[len(g.cells) // 2], g.cells[-1]):
            for count in (1, 2, 3):  # place_ring at a cell lands on the image cell
                move = Move(PLACE_RING, 1, to_cell=cell, count=count)
                image = Move(PLACE_RING, 1, to_cell=int(sym.cell[cell]), count=count)
                one_hot = np.zeros(lay.policy_size, dtype=np.float32)
                one_hot[move_to_index(config, move)] = 1.0
                moved = transform_policy(one_hot, config, index)
                assert np.flatnonzero(moved).tolist() == [move_to_index(config, image)]
        specials = lay.policy_planes * lay.cells
        assert np.array_equal(images[index][specials:], vector[specials:])  # swap, skips fixed
        inverses = [
            j for j in range(len(syms))
            if np.array_equal(transform_policy(images[index], config, j), vector)
        ]  # fmt: skip
        assert len(inverses) == 1, (board, sym.name)  # a group: exactly one inverse
