"""RingRift rules engine (a library): configs, geometry, moves, game state and interop.

GameConfig, ALL_CONFIGS       -- board type x player count (engine.config)
geometry(board) -> Geometry   -- flat cell indices, coordinates, keys, rays (engine.geometry)
Move                          -- immutable move; to_notation/from_notation, RingRift JSON
GameState.initial(config)     -- legal_moves(), apply(move), copy(), is_over, winner,
                                 ranking(), zobrist_hash, to/from RingRift JSON
IllegalMoveError(ValueError)  -- raised by GameState.apply with the move and the reason
"""

from engine.config import ALL_CONFIGS, BOARD_TYPES, GameConfig
from engine.geometry import Geometry, geometry
from engine.move import Move
from engine.state import GameState, IllegalMoveError

__all__ = [
    "ALL_CONFIGS",
    "BOARD_TYPES",
    "GameConfig",
    "GameState",
    "Geometry",
    "IllegalMoveError",
    "Move",
    "geometry",
]
