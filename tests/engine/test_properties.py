"""Hypothesis properties over random playouts of every config: termination, conservation,
S-invariant, incremental hash, JSON and notation round trips, move validation."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import ALL_CONFIGS, GameConfig
from engine.move import Move
from engine.serialize import (
    match_move,
    move_from_json,
    move_to_json,
    state_from_json,
    state_to_json,
)
from engine.state import GameState, IllegalMoveError

SMALL = ("square8", "hex8")


def check_position(s: GameState, previous_s: int) -> int:
    n = s.num_players
    on_board = [s.rings_on_board(p) for p in range(n + 1)]
    for p in range(1, n + 1):
        assert s.rings_in_hand(p) + on_board[p] + s._elim_colour[p] == s.rings_per_player
    total = sum(s.rings_in_hand(p) for p in range(1, n + 1)) + sum(on_board) + s.total_eliminated
    assert total == s.rings_per_player * n
    for c in s.geometry.cells:
        occupied = (s.height(c) > 0) + (s.marker(c) > 0) + (s.collapsed(c) > 0)
        assert occupied <= 1, f"cell {c} holds more than one kind of piece"
    value = s.s_invariant()
    assert value >= previous_s
    assert s.zobrist_hash == s.recompute_hash()
    return value


def check_round_trip(s: GameState) -> None:
    data = state_to_json(s)
    again = state_from_json(data)
    assert state_to_json(again) == data
    assert again.recompute_hash() ^ again._meta_hash() == s.board_hash_from_scratch()


def mutants(move: Move, rng: random.Random, num_cells: int) -> list[Move]:
    out = [move._replace(player=move.player % 4 + 1)]
    if move.to_cell is not None:
        out.append(move._replace(to_cell=rng.randrange(num_cells)))
    if move.from_cell is not None:
        out.append(move._replace(from_cell=rng.randrange(num_cells)))
    if move.count:
        out.append(move._replace(count=move.count % 3 + 1))
    if move.cells:
        out.append(move._replace(cells=move.cells[1:]))
    return out


def check_moves(s: GameState, moves: list[Move], rng: random.Random) -> None:
    assert moves, "an active state always has a legal move (R203)"
    legal = set(moves)
    assert len(legal) == len(moves), "duplicate moves generated"
    for move in rng.sample(moves, min(3, len(moves))):
        assert Move.from_notation(move.to_notation()) == move
        assert match_move(s, move_from_json(move_to_json(move, s.geometry), s.geometry)) == move
        s.copy().apply(move)
        for bad in mutants(move, rng, s.geometry.num_cells):
            if bad not in legal:
                with pytest.raises(IllegalMoveError):
                    s.copy().apply(bad)


def playout(config: GameConfig, seed: int, max_moves: int) -> GameState:
    rng = random.Random(seed)
    s = GameState.initial(config)
    value = check_position(s, 0)
    while not s.is_over and s.move_count < max_moves:
        moves = s.legal_moves()
        check_moves(s, moves, rng)
        s.apply(rng.choice(moves))
        value = check_position(s, value)
        if s.move_count % 7 == 0:
            check_round_trip(s)
    return s


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_random_playouts(config: GameConfig) -> None:
    small = config.board in SMALL

    @settings(
        max_examples=4 if small else 1,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    @given(seed=st.integers(0, 2**32 - 1))
    def run(seed: int) -> None:
        s = playout(config, seed, 5000 if small else 120)
        if small:
            assert s.is_over, "a small-board random game must terminate"
            assert s.winner is not None
            assert s.ranking()[s.winner - 1] == 1

    run()


def test_game_over_has_no_moves() -> None:
    s = playout(GameConfig("square8", 2), 11, 5000)
    assert s.is_over and s.legal_moves() == []
    with pytest.raises(IllegalMoveError, match="game is over"):
        s.apply(Move("skip_placement", s.current_player))
