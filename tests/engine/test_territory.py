"""Territory processing on hand-built positions: which border markers collapse (R145 step 2)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from engine.config import GameConfig
from engine.move import CHOOSE_TERRITORY_OPTION
from engine.serialize import state_from_json
from engine.state import GameState
from engine.territory import find_regions

Coords = tuple[int, ...]


def _position(c: Coords) -> dict[str, int]:
    return dict(zip("xyz", c, strict=False))


def _key(c: Coords) -> str:
    return ",".join(map(str, c))


def _state(
    board: str,
    *,
    stacks: dict[Coords, list[int]],
    markers: dict[Coords, int],
    collapsed: dict[Coords, int] | None = None,
) -> GameState:
    """Player 1 to move in territory_processing (2 players) on the given board."""
    d: dict[str, Any] = {
        "boardType": board,
        "currentPlayer": 1,
        "currentPhase": "territory_processing",
        "players": [{"playerNumber": p, "ringsInHand": 0} for p in (1, 2)],
        "board": {
            "type": board,
            "stacks": {_key(c): {"rings": rings} for c, rings in stacks.items()},
            "markers": {_key(c): {"player": p} for c, p in markers.items()},
            "collapsedSpaces": {_key(c): o for c, o in (collapsed or {}).items()},
        },
    }
    return state_from_json(d)


def _process(s: GameState, region: set[Coords]) -> tuple[set[Coords], set[Coords]]:
    """Claim `region`; return (cells newly collapsed, cells still holding a marker)."""
    g = s.geometry
    cells = tuple(sorted(g.cell_of(c) for c in region))
    before = {c for c in range(g.num_cells) if s._collapsed[c]}
    (move,) = [m for m in s.legal_moves() if m.type == CHOOSE_TERRITORY_OPTION and m.cells == cells]
    s.apply(move)
    after = {c for c in range(g.num_cells) if s._collapsed[c]}
    markers = {g.coords(c) for c in range(g.num_cells) if s._markers[c]}
    return {g.coords(c) for c in after - before}, markers


def test_square_edge_cell_keeps_the_diagonal_marker() -> None:
    # The issue's example: (3,7) on the bottom edge, sealed by player 1's marker at (3,6)
    # and collapsed cells beside it; (2,6) touches the region only diagonally.
    s = _state(
        "square8",
        stacks={(0, 0): [1], (7, 0): [2]},
        markers={(3, 6): 1, (2, 6): 1},
        collapsed={(2, 7): 2, (4, 7): 2},
    )
    collapsed, markers = _process(s, {(3, 7)})
    assert collapsed == {(3, 7), (3, 6)}
    assert markers == {(2, 6)}
    assert s.territory(1) == 2


def test_square_wall_corner_and_second_layer_stay() -> None:
    # A 2x2 corner region walled by player 1: the wall's corner (2,2) is only diagonal to
    # the region, (3,0) and (3,1) form a second layer, (3,3) a chain running away.
    wall = {(2, 0), (2, 1), (0, 2), (1, 2)}
    extra = {(2, 2), (3, 0), (3, 1), (3, 3)}
    s = _state(
        "square8",
        stacks={(7, 7): [1], (6, 0): [2]},
        markers={c: 1 for c in wall | extra},
    )
    region = {(0, 0), (1, 0), (0, 1), (1, 1)}
    collapsed, markers = _process(s, region)
    assert collapsed == region | wall
    assert markers == extra


def test_square_region_with_a_stack_collapses_only_adjacent_markers() -> None:
    # Player 2's stack alone in a region sealed by player 1's markers and the edge; (5,1)
    # closes the wall's corner but is only diagonal to the region.
    wall = {(5, 0), (6, 1), (7, 1)}
    rest = {(5, 1), (4, 2), (4, 0)}
    s = _state(
        "square8",
        stacks={(6, 0): [2, 2], (0, 7): [1], (3, 3): [2]},
        markers={c: 1 for c in wall | rest},
    )
    collapsed, markers = _process(s, {(6, 0), (7, 0)})
    assert collapsed == {(6, 0), (7, 0)} | wall
    assert markers == rest
    assert s.eliminated_rings(1) == 2


def test_hex_corner_region_keeps_the_marker_behind_the_wall() -> None:
    wall = {(4, -1, -3), (3, 0, -3), (3, 1, -4)}
    behind = {(2, 1, -3), (2, 2, -4)}
    s = _state(
        "hex8",
        stacks={(-4, 0, 4): [1], (0, 0, 0): [2]},
        markers={c: 1 for c in wall | behind},
    )
    collapsed, markers = _process(s, {(4, 0, -4)})
    assert collapsed == {(4, 0, -4)} | wall
    assert markers == behind


def test_hexagonal_wall_of_markers_and_collapsed_cells() -> None:
    # Two edge cells sealed by player 1's markers and a collapsed cell; one more player 1
    # marker touches the wall but not the region.
    region = {(12, 0, -12), (12, -1, -11)}
    wall = {(11, 0, -11), (11, 1, -12), (12, -2, -10)}
    s = _state(
        "hexagonal",
        stacks={(-4, 0, 4): [1], (0, 0, 0): [2]},
        markers={c: 1 for c in wall | {(10, 1, -11)}},
        collapsed={(11, -1, -10): 2},
    )
    collapsed, markers = _process(s, region)
    assert collapsed == region | wall
    assert markers == {(10, 1, -11)}


@pytest.mark.parametrize("name", ["square8_2p", "square8_3p", "hex8_2p", "square19_2p"])
def test_random_regions_collapse_exactly_their_adjacent_border(name: str) -> None:
    """In random games every claimed region collapses itself plus the sealing markers that
    are territory-adjacent to it, and no marker territory-adjacent to it survives."""
    config = GameConfig.parse(name)
    g = GameState.initial(config).geometry
    seen = 0
    for seed in range(40 if config.board != "square19" else 4):
        rng = random.Random(seed)
        s = GameState.initial(config)
        while not s.is_over:
            moves = s.legal_moves()
            move = rng.choice(moves)
            if move.type == CHOOSE_TERRITORY_OPTION:
                border = find_regions(s)[move.cells]
                inside = set(move.cells)
                ring = {y for c in inside for y in g.territory_neighbors[c]} - inside
                sealing = {y for y in ring if s._markers[y]}
                assert all(s._markers[y] == border for y in sealing)
                before = {c for c in range(g.num_cells) if s._collapsed[c]}
                s.apply(move)
                after = {c for c in range(g.num_cells) if s._collapsed[c]}
                assert after - before == inside | sealing
                seen += 1
            else:
                s.apply_unchecked(move)
    assert seen > 0


def _flooded(state: GameState, open_cells: set[int]) -> list[set[int]]:
    """Territory-connected components by breadth-first search over the neighbour lists."""
    components, left = [], set(open_cells)
    while left:
        frontier = [min(left)]
        found = set(frontier)
        while frontier:
            cell = frontier.pop()
            for y in state.geometry.territory_neighbors[cell]:
                if y in left and y not in found:
                    found.add(y)
                    frontier.append(y)
        components.append(found)
        left -= found
    return components


@pytest.mark.parametrize("board", ["square8", "square19", "hex8", "hexagonal"])
def test_bit_mask_components_equal_a_search_over_the_neighbours(board: str) -> None:
    from engine.territory import _component_masks

    state = GameState.initial(GameConfig(board, 2))
    g, rng = state.geometry, random.Random(board)
    for density in (0.2, 0.4, 0.55, 0.7, 0.9):
        for _ in range(5):
            open_cells = {c for c in g.cells if rng.random() < density}
            mask = sum(g.bit[c] for c in open_cells)
            found = [set(g.cells_of_mask(m)) for m in _component_masks(state, mask)]
            expected = _flooded(state, open_cells)
            assert sorted(map(sorted, found)) == sorted(map(sorted, expected))
            lowest = [g.bit[min(c, key=lambda cell: g.bit[cell])] for c in found]
            assert lowest == sorted(lowest)  # in the order of their lowest grid cells
