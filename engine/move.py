"""The Move value type, its compact notation and its RingRift move-JSON form."""

from __future__ import annotations

from typing import Any, NamedTuple

from engine.geometry import Cell

# Canonical RingRift move types (RULES_DIGEST §6).
PLACE_RING = "place_ring"
SKIP_PLACEMENT = "skip_placement"
NO_PLACEMENT_ACTION = "no_placement_action"
SWAP_SIDES = "swap_sides"
MOVE_STACK = "move_stack"
OVERTAKING_CAPTURE = "overtaking_capture"
CONTINUE_CAPTURE = "continue_capture_segment"
SKIP_CAPTURE = "skip_capture"
RECOVERY_SLIDE = "recovery_slide"
SKIP_RECOVERY = "skip_recovery"
NO_MOVEMENT_ACTION = "no_movement_action"
PROCESS_LINE = "process_line"
CHOOSE_LINE_OPTION = "choose_line_option"
ELIMINATE_RINGS = "eliminate_rings_from_stack"
NO_LINE_ACTION = "no_line_action"
CHOOSE_TERRITORY_OPTION = "choose_territory_option"
SKIP_TERRITORY = "skip_territory_processing"
NO_TERRITORY_ACTION = "no_territory_action"
FORCED_ELIMINATION = "forced_elimination"

MOVE_TYPES = (
    PLACE_RING, SKIP_PLACEMENT, NO_PLACEMENT_ACTION, SWAP_SIDES, MOVE_STACK,
    OVERTAKING_CAPTURE, CONTINUE_CAPTURE, SKIP_CAPTURE, RECOVERY_SLIDE, SKIP_RECOVERY,
    NO_MOVEMENT_ACTION, PROCESS_LINE, CHOOSE_LINE_OPTION, ELIMINATE_RINGS, NO_LINE_ACTION,
    CHOOSE_TERRITORY_OPTION, SKIP_TERRITORY, NO_TERRITORY_ACTION, FORCED_ELIMINATION,
)  # fmt: skip

BOOKKEEPING = frozenset(
    {NO_PLACEMENT_ACTION, NO_MOVEMENT_ACTION, NO_LINE_ACTION, NO_TERRITORY_ACTION}
)
VOLUNTARY_SKIPS = frozenset({SKIP_PLACEMENT, SKIP_CAPTURE, SKIP_TERRITORY, SKIP_RECOVERY})

# Legacy names accepted when reading RingRift JSON (RULES_DIGEST §6).
LEGACY_ALIASES = {
    "move_ring": MOVE_STACK,
    "build_stack": MOVE_STACK,
    "choose_line_reward": CHOOSE_LINE_OPTION,
    "process_territory_region": CHOOSE_TERRITORY_OPTION,
    "territory_claim": CHOOSE_TERRITORY_OPTION,
    "line_formation": PROCESS_LINE,
    "chain_capture": CONTINUE_CAPTURE,
}

_CODES = {
    PLACE_RING: "P", SKIP_PLACEMENT: "SP", NO_PLACEMENT_ACTION: "NP", SWAP_SIDES: "SW",
    MOVE_STACK: "M", OVERTAKING_CAPTURE: "X", CONTINUE_CAPTURE: "C", SKIP_CAPTURE: "SC",
    RECOVERY_SLIDE: "R", SKIP_RECOVERY: "SR", NO_MOVEMENT_ACTION: "NM", PROCESS_LINE: "L",
    CHOOSE_LINE_OPTION: "LO", ELIMINATE_RINGS: "E", NO_LINE_ACTION: "NL",
    CHOOSE_TERRITORY_OPTION: "T", SKIP_TERRITORY: "ST", NO_TERRITORY_ACTION: "NT",
    FORCED_ELIMINATION: "F",
}  # fmt: skip
_TYPES_BY_CODE = {code: t for t, code in _CODES.items()}


class Move(NamedTuple):
    """One recorded action; immutable and hashable. Cells are flat indices (see Geometry).

    `cells` names the line (process_line, choose_line_option) or region
    (choose_territory_option) a decision concerns, sorted; `collapse` the cells a line
    reward or recovery slide collapses; `option` the line/recovery reward (1 all, 2 minimum);
    `mode` the recovery mode (line, fallback, stack_strike) or elimination context (line,
    territory, recovery); `extraction` the stack a recovery cost is paid from.
    """

    type: str
    player: int
    from_cell: Cell | None = None
    to_cell: Cell | None = None
    capture_target: Cell | None = None
    count: int = 0  # type: ignore[assignment]  # shadows tuple.count; RingRift's field name
    cells: tuple[Cell, ...] = ()
    collapse: tuple[Cell, ...] = ()
    option: int = 0
    mode: str = ""
    extraction: Cell | None = None

    def __str__(self) -> str:
        return self.to_notation()

    def to_notation(self) -> str:
        """Compact, round-trippable string, e.g. "M1:f27:t35" or "P2:t10:n3"."""
        parts = [f"{_CODES[self.type]}{self.player}"]
        for tag, value in (
            ("f", self.from_cell),
            ("t", self.to_cell),
            ("c", self.capture_target),
            ("e", self.extraction),
        ):
            if value is not None:
                parts.append(f"{tag}{value}")
        if self.count:
            parts.append(f"n{self.count}")
        if self.option:
            parts.append(f"o{self.option}")
        if self.mode:
            parts.append(f"m{self.mode}")
        if self.cells:
            parts.append("l" + "-".join(map(str, self.cells)))
        if self.collapse:
            parts.append("k" + "-".join(map(str, self.collapse)))
        return ":".join(parts)

    @classmethod
    def from_notation(cls, text: str) -> Move:
        try:
            return _parse_notation(text)
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"bad move notation {text!r}") from None


def _parse_notation(text: str) -> Move:
    head, *fields = text.split(":")
    split = len(head.rstrip("0123456789"))
    kwargs: dict[str, Any] = {"type": _TYPES_BY_CODE[head[:split]], "player": int(head[split:])}
    names = {
        "f": "from_cell",
        "t": "to_cell",
        "c": "capture_target",
        "e": "extraction",
        "n": "count",
        "o": "option",
    }
    for field in fields:
        tag, value = field[0], field[1:]
        if tag in names:
            kwargs[names[tag]] = int(value)
        elif tag == "m":
            kwargs["mode"] = value
        elif tag in "lk":
            kwargs["cells" if tag == "l" else "collapse"] = tuple(int(v) for v in value.split("-"))
        else:
            raise ValueError(tag)
    return Move(**kwargs)
