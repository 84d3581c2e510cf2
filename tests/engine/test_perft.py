"""Perft oracle: legal-move tree sizes from each config's initial position, pinned."""

from __future__ import annotations

import pytest

from engine.config import ALL_CONFIGS, GameConfig
from engine.state import GameState


def perft(s: GameState, depth: int) -> int:
    """Leaves of the legal-move tree at `depth` (bulk-counted at the last ply)."""
    moves = s.legal_moves()
    if depth == 1 or s.is_over:
        return len(moves) if depth == 1 else 1
    total = 0
    for move in moves:
        child = s.copy()
        child.apply_unchecked(move)
        total += perft(child, depth - 1)
    return total


# Depth 5 on the small boards crosses a whole turn (placement, movement, no_line_action,
# no_territory_action) into the second player's placement, where 2-player games also
# offer swap_sides (the pie rule).
PERFT = {
    "square8_2p": (5, 600096),
    "square8_3p": (5, 596904),
    "square8_4p": (5, 596904),
    "hex8_2p": (5, 434970),
    "hex8_3p": (5, 432540),
    "hex8_4p": (5, 432540),
    "square19_2p": (2, 56520),
    "square19_3p": (2, 56520),
    "square19_4p": (2, 56520),
    "hexagonal_2p": (2, 70062),
    "hexagonal_3p": (2, 70062),
    "hexagonal_4p": (2, 70062),
}


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_perft(config: GameConfig) -> None:
    depth, expected = PERFT[config.name]
    assert perft(GameState.initial(config), depth) == expected


def test_first_ply_counts() -> None:
    # 64 cells x counts 1-3 on square8; 61 x 3 on hex8: every empty-board placement is live.
    assert perft(GameState.initial(GameConfig("square8", 2)), 1) == 192
    assert perft(GameState.initial(GameConfig("hex8", 2)), 1) == 183
    assert perft(GameState.initial(GameConfig("square19", 2)), 1) == 361 * 3
    assert perft(GameState.initial(GameConfig("hexagonal", 2)), 1) == 469 * 3
