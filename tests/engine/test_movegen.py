"""Placement generation with free-run bit masks, and stack moves from shared move tables,
equal the cell-by-cell ray scans they replaced, on every board and player count, in
positions of random games."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from engine import GameConfig, GameState, Move
from engine import movegen as mg
from engine.move import MOVE_STACK, PLACE_RING


def _positions(config: str, games: int, seed: int) -> Iterator[GameState]:
    rng = random.Random(seed)
    for _ in range(games):
        state = GameState.initial(GameConfig.parse(config))
        while not state.is_over and state.move_count < 600:
            yield state
            state.apply_unchecked(rng.choice(state.legal_moves()))


def _scanned_run(s: GameState, cell: int, need: int) -> bool:
    """The definition: some ray from ``cell`` has ``need`` cells free of stacks and collapse."""
    for ray in s.geometry.rays[cell]:
        if len(ray) >= need and not any(s._stacks[x] or s._collapsed[x] for x in ray[:need]):
            return True
    return False


def _scanned_placements(s: GameState, player: int) -> list[Move]:
    """Placements as generated before the masks: every empty cell's rays scanned."""
    room = mg.placement_room(s, player)
    out: list[Move] = []
    top = min(3, room)
    for c in s.geometry.cells if room > 0 else ():
        if s._collapsed[c] or s._markers[c]:
            continue
        st = s._stacks[c]
        if st:
            cap = mg.cap_height(st) + 1 if st[0] == player else 1
            if mg.has_action_from(s, c, len(st) + 1, cap):
                out.append(Move(PLACE_RING, player, None, c, None, 1))
            continue
        counts = range(1, top + 1)
        if not _scanned_run(s, c, top):
            counts = [n for n in counts if mg.has_action_from(s, c, n, n)]
        out += [Move(PLACE_RING, player, None, c, None, n) for n in counts]
    return out


CONFIGS = ["square8_2p", "square8_4p", "square19_3p", "hex8_2p", "hexagonal_4p"]


@pytest.mark.parametrize("config", CONFIGS)
def test_free_run_masks_match_the_rays(config: str) -> None:
    checked = 0
    for k, state in enumerate(_positions(config, games=2, seed=7)):
        if k % 7:
            continue
        masks = mg.free_run_masks(state, 3)
        for cell in state.geometry.cells:
            for need in (1, 2, 3):
                found = bool(masks[need - 1] & state.geometry.bit[cell])
                assert found == _scanned_run(state, cell, need), (state, cell, need)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("config", CONFIGS)
def test_placements_equal_the_scanned_ones_in_order(config: str) -> None:
    compared = 0
    for state in _positions(config, games=3, seed=3):
        for player in range(1, state.num_players + 1):
            assert mg.placements(state, player) == _scanned_placements(state, player)
            compared += 1
    assert compared > 200


def _scanned_stack_moves(s: GameState, player: int, cell: int) -> list[Move]:
    """Non-capture moves as generated before the tables: a new Move per landing."""
    height = len(s._stacks[cell])
    out = []
    for ray in s.geometry.rays[cell]:
        for k, x in enumerate(ray, 1):
            if s._collapsed[x] or s._stacks[x]:
                break
            if k >= height:
                out.append(Move(MOVE_STACK, player, cell, x))
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_stack_moves_equal_the_scanned_ones_in_order(config: str) -> None:
    compared = 0
    for state in _positions(config, games=2, seed=5):
        for cell, st in enumerate(state._stacks):
            if st:
                found: list[Move] = []
                mg.stack_moves(state, st[0], cell, found)
                assert found == _scanned_stack_moves(state, st[0], cell)
                compared += bool(found)
    assert compared > 200
