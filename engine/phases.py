"""The phases of a RingRift turn (the state machine GameState runs)."""

from __future__ import annotations

RING_PLACEMENT = "ring_placement"
MOVEMENT = "movement"
CAPTURE = "capture"
CHAIN_CAPTURE = "chain_capture"
LINE_PROCESSING = "line_processing"
TERRITORY_PROCESSING = "territory_processing"
FORCED_ELIMINATION_PHASE = "forced_elimination"
GAME_OVER = "game_over"
PHASES = (
    RING_PLACEMENT, MOVEMENT, CAPTURE, CHAIN_CAPTURE, LINE_PROCESSING,
    TERRITORY_PROCESSING, FORCED_ELIMINATION_PHASE, GAME_OVER,
)  # fmt: skip
