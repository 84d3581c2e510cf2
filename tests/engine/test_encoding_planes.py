"""engine.encoding's batched planes against a plain per-cell reference of the documented
layout, on states sampled along random games of every config (all phases, 2–4 players),
each state alone and mixed in one batch."""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine.config import ALL_CONFIGS, GameConfig
from engine.encoding import HEIGHT_SCALE, PER_SEAT_PLANES, encode_state, encode_states, layout
from engine.phases import PHASES
from engine.state import GameState


def reference_planes(state: GameState) -> np.ndarray:
    """The planes of one state, cell by cell, straight from the layout's description."""
    lay = layout(state.config)
    n = state.num_players
    planes = np.zeros((lay.in_planes, lay.height * lay.width), dtype=np.float32)
    on_board = [int(lay.grid[cell]) for cell in range(len(lay.grid))]
    for pos in on_board:
        planes[0, pos] = 1.0

    def base(player: int) -> int:
        seat = (player - state.current_player) % n
        return 1 + PER_SEAT_PLANES * seat

    for cell, pos in enumerate(on_board):
        stack = state._stacks[cell]
        if stack:
            planes[base(stack[0]), pos] = 1.0
            planes[base(stack[0]) + 1, pos] = min(len(stack) / HEIGHT_SCALE, 1.0)
            planes[base(stack[0]) + 2, pos] = min(state.cap_height(cell) / HEIGHT_SCALE, 1.0)
            for owner in stack[1:]:
                planes[base(owner) + 5, pos] = 1.0
        if state.marker(cell):
            planes[base(state.marker(cell)) + 3, pos] = 1.0
        if state.collapsed(cell):
            planes[base(state.collapsed(cell)) + 4, pos] = 1.0
    for player in range(1, n + 1):
        for pos in on_board:
            planes[base(player) + 6, pos] = state.rings_in_hand(player) / state.rings_per_player
            planes[base(player) + 7, pos] = state.eliminated_rings(player) / state.victory_threshold
            planes[base(player) + 8, pos] = state.territory(player) / state.territory_minimum
    g = 1 + PER_SEAT_PLANES * n
    focus = state.chain_pos if state.phase in ("capture", "chain_capture") else state.must_move
    for pos in on_board:
        planes[g + PHASES.index(state.phase), pos] = 1.0
        planes[g + len(PHASES) + 2, pos] = float(state.pending_line)
        planes[g + len(PHASES) + 3, pos] = float(state.swap_offered)
    if focus >= 0:
        planes[g + len(PHASES), on_board[focus]] = 1.0
    for cell in state.pending_region or ():
        planes[g + len(PHASES) + 1, on_board[cell]] = 1.0
    return planes.reshape(lay.in_planes, lay.height, lay.width)


def sampled_states(config: GameConfig, seed: int, count: int) -> list[GameState]:
    """States along random games, every move's position kept (so every phase appears)."""
    rng = random.Random(seed)
    state, out = GameState.initial(config), []
    while len(out) < count:
        if state.is_over:
            state = GameState.initial(config)
        state.apply_unchecked(rng.choice(state.legal_moves()))
        if not state.is_over and rng.random() < 0.3:
            out.append(state.copy())
    return out


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_batched_planes_equal_the_per_cell_reference(config: GameConfig) -> None:
    states = sampled_states(config, seed=7, count=60 if config.board in ("square8", "hex8") else 12)
    phases = {s.phase for s in states}
    assert {"ring_placement", "movement"} <= phases, phases
    batch = encode_states(states)
    for index, state in enumerate(states):
        expected = reference_planes(state)
        assert np.array_equal(batch[index], expected), f"state {index} ({state.phase})"
        assert np.array_equal(encode_state(state), expected)


def test_the_reference_sees_what_the_encoding_must_distinguish() -> None:
    """Stacks, markers, buried rings and the focus cell all occur in the sampled states."""
    states = sampled_states(GameConfig("square8", 3), seed=3, count=200)
    planes = np.stack([reference_planes(s) for s in states])
    for offset in (0, 1, 2, 3, 5):  # controlled, height, cap, marker, buried (seat 0)
        assert planes[:, 1 + offset].any(), offset
    assert any(s.pending_line or s.pending_region or s.chain_pos >= 0 for s in states)


def test_a_batch_of_two_configs_is_refused() -> None:
    with pytest.raises(ValueError, match="hex8_2p among square8_2p"):
        encode_states(
            [GameState.initial(GameConfig("square8", 2)), GameState.initial(GameConfig("hex8", 2))]
        )
