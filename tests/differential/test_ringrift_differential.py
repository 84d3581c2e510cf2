"""Opt-in: RingRift's TypeScript engine plays seeded random games and ringloop replays them;
every disagreement must be of a known kind with the rule that decides it (see KINDS).

Runs where node and a RingRift checkout are present:
    git clone https://github.com/synaptent/RingRift /path/RingRift
    (cd /path/RingRift && npm install --no-save tsx zod)
    RINGRIFT_DIR=/path/RingRift pytest tests/differential
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ringrift_differential import (
    Tally,
    compare_game,
    missing_prerequisites,
    move_key,
    ringrift_games,
    verdict_of,
)

from engine.config import GameConfig
from engine.move import CHOOSE_TERRITORY_OPTION, Move

RINGRIFT = Path(os.environ["RINGRIFT_DIR"]) if os.environ.get("RINGRIFT_DIR") else None
WHY = missing_prerequisites(RINGRIFT)

GAMES = {
    "square8_2p": 4,
    "square8_3p": 3,
    "square8_4p": 3,
    "hex8_2p": 3,
    "square19_2p": 1,
    "hexagonal_2p": 1,
}


def test_a_region_is_keyed_by_its_cells_not_the_cell_naming_it() -> None:
    a = Move(CHOOSE_TERRITORY_OPTION, 1, None, 5, None, 0, (5, 6, 7))
    assert move_key(a) == move_key(a._replace(to_cell=7))


def test_unknown_kinds_are_unclassified() -> None:
    assert verdict_of("something new")[1] == "unclassified"
    assert verdict_of("position after choose_territory_option: collapsed,marker "
                      "(RingRift collapses more markers)")[1] != "unclassified"  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(WHY is not None, reason=f"differential run not enabled: {WHY}")
@pytest.mark.parametrize("name", sorted(GAMES))
def test_every_disagreement_with_ringrift_is_a_known_kind(name: str) -> None:
    assert RINGRIFT is not None
    tally = Tally()
    for game in ringrift_games(RINGRIFT, GameConfig.parse(name), 1, GAMES[name]):
        tally.merge(compare_game(game))
    assert tally.positions > 0
    unknown = {k: tally.examples[k] for k in tally.differ if verdict_of(k)[1] == "unclassified"}
    assert not unknown, unknown
