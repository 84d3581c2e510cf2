"""Config parsing, geometry tables, notation, records, rendering and rule spot checks."""

from __future__ import annotations

import json
import random

import pytest

from engine.config import ALL_CONFIGS, GameConfig
from engine.geometry import geometry
from engine.move import Move
from engine.record import replay, to_record
from engine.render import render
from engine.state import GameState, IllegalMoveError


def test_config_parse_and_thresholds() -> None:
    assert len(ALL_CONFIGS) == 12
    assert GameConfig.parse("hex8_3p") == GameConfig("hex8", 3)
    with pytest.raises(ValueError, match="'hex9_3p'"):
        GameConfig.parse("hex9_3p")
    table = {c.name: (c.victory_threshold, c.territory_minimum, c.line_length) for c in ALL_CONFIGS}
    assert table["square8_2p"] == (18, 33, 4)
    assert table["square8_3p"] == (24, 22, 3)
    assert table["hex8_4p"] == (30, 16, 3)
    assert table["square19_3p"] == (96, 121, 4)
    assert table["hexagonal_4p"] == (160, 118, 4)


@pytest.mark.parametrize(
    "board,cells", [("square8", 64), ("hex8", 61), ("square19", 361), ("hexagonal", 469)]
)
def test_geometry_keys_round_trip(board: str, cells: int) -> None:
    g = geometry(board)
    assert g.num_cells == cells
    for c in g.cells:
        assert g.cell_of_key(g.key(c)) == c
        assert g.cell_of(g.coords(c)) == c
    with pytest.raises(ValueError, match="99"):
        g.cell_of_key("99,99")


def _random_game(name: str, seed: int) -> tuple[GameConfig, list[Move], GameState]:
    config = GameConfig.parse(name)
    rng = random.Random(seed)
    s = GameState.initial(config)
    moves = []
    while not s.is_over:
        move = rng.choice(s.legal_moves())
        moves.append(move)
        s.apply(move)
    return config, moves, s


def test_record_round_trip_and_wrong_winner() -> None:
    config, moves, s = _random_game("square8_3p", 4)
    record = json.loads(json.dumps(to_record(config, moves)))
    result = replay(record)
    assert result.ok and result.moves_applied == len(moves) and result.winner == s.winner
    record["winner"] = s.winner % 3 + 1
    assert "winner" in (replay(record).error or "")
    record["moves"][0]["to"] = {"x": 99, "y": 0}
    assert not replay(record).ok


def test_illegal_move_message_quotes_the_move() -> None:
    s = GameState.initial(GameConfig("square8", 2))
    with pytest.raises(IllegalMoveError, match="M1:f0:t1"):
        s.apply(Move("move_stack", 1, 0, 1))


def test_pie_rule_offered_once_to_player_two() -> None:
    s = GameState.initial(GameConfig("square8", 2))
    while s.current_player == 1:
        s.apply(s.legal_moves()[0])
    assert any(m.type == "swap_sides" for m in s.legal_moves())
    s.apply(Move("swap_sides", 2))
    assert s.swapped and s.current_player == 2 and s.phase == "ring_placement"
    assert not any(m.type == "swap_sides" for m in s.legal_moves())
    no_swap = GameState.initial(GameConfig("square8", 2), swap_rule=False)
    while no_swap.current_player == 1:
        no_swap.apply(no_swap.legal_moves()[0])
    assert not any(m.type == "swap_sides" for m in no_swap.legal_moves())


def test_movement_leaves_marker_and_bookkeeping_is_explicit() -> None:
    g = geometry("square8")
    s = GameState.initial(GameConfig("square8", 2))
    s.apply(Move("place_ring", 1, None, g.cell_of((3, 3)), None, 1))
    s.apply(Move("move_stack", 1, g.cell_of((3, 3)), g.cell_of((3, 4))))
    assert s.marker(g.cell_of((3, 3))) == 1 and s.phase == "line_processing"
    assert s.legal_moves() == [Move("no_line_action", 1)]
    s.apply(Move("no_line_action", 1))
    assert s.legal_moves() == [Move("no_territory_action", 1)]
    s.apply(Move("no_territory_action", 1))
    assert (s.current_player, s.phase) == (2, "ring_placement")


@pytest.mark.parametrize("name", ["square8_2p", "hex8_4p"])
def test_render_shows_every_stack(name: str) -> None:
    _, _, s = _random_game(name, 9)
    text = render(s)
    assert f"winner {s.winner}" in text
    stacks = sum(1 for c in s.geometry.cells if s.height(c))
    cells = text.split("\n")[: s.geometry.size + 1]
    assert (
        sum(tok[:1].isdigit() and len(tok) == 2 for row in cells for tok in row.split()[1:])
        >= stacks
    )


def test_copy_sets_every_slot_and_shares_no_list() -> None:
    """GameState.copy names its slots one by one (speed); a slot added later and left out
    of it, or a list shared between copies, fails here."""
    import random as _random

    from engine.config import GameConfig as _Config
    from engine.state import GameState as _State

    rng = _random.Random(3)
    state = _State.initial(_Config("square8", 3))
    for _ in range(60):
        state.apply_unchecked(rng.choice(state.legal_moves()))
    twin = state.copy()
    for name in _State.__slots__:
        original, copied = getattr(state, name), getattr(twin, name)
        assert copied == original, name
        if isinstance(original, list) and name not in ("_mkeys", "_ckeys"):  # board constants
            assert copied is not original, f"{name} is shared between copies"
    assert twin.zobrist_hash == state.zobrist_hash
