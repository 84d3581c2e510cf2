"""Position snapshots: the board and ring counts a replay must agree on with a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.geometry import Geometry
    from engine.state import GameState


@dataclass(frozen=True)
class Position:
    """Stacks (rings top first), markers and collapsed cells by cell, and per seat 1..n the
    rings in hand and the rings eliminated (credited to the player who caused them)."""

    stacks: dict[int, tuple[int, ...]]
    markers: dict[int, int]
    collapsed: dict[int, int]
    rings_in_hand: tuple[int, ...]
    eliminated: tuple[int, ...]


def position_of(s: GameState) -> Position:
    n = s.num_players
    return Position(
        stacks={c: st for c, st in enumerate(s._stacks) if st},
        markers={c: m for c, m in enumerate(s._markers) if m},
        collapsed={c: o for c, o in enumerate(s._collapsed) if o},
        rings_in_hand=tuple(s._hand[1 : n + 1]),
        eliminated=tuple(s._elim[1 : n + 1]),
    )


def _get(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = d.get(camel)
    return d.get(snake, default) if value is None else value


def _rings_top_first(st: dict[str, Any]) -> tuple[int, ...]:
    """RingRift's TypeScript lists a stack top ring first, its Python bottom ring first; the
    controlling player (the top ring) tells them apart, the key style where it cannot."""
    rings = tuple(int(r) for r in st["rings"])
    top = _get(st, "controllingPlayer", "controlling_player")
    if rings and top is not None and rings[0] != rings[-1]:
        return rings if rings[0] == int(top) else rings[::-1]
    return rings[::-1] if "controlling_player" in st or "stack_height" in st else rings


def position_from_json(d: dict[str, Any], g: Geometry, num_players: int) -> Position:
    """A RingRift GameState JSON (TypeScript camelCase or Python snake_case) as a Position."""
    board = d["board"]
    by_seat = {int(_get(p, "playerNumber", "player_number")): p for p in d.get("players", ())}
    seats = [by_seat.get(p, {}) for p in range(1, num_players + 1)]
    collapsed = _get(board, "collapsedSpaces", "collapsed_spaces", {})
    return Position(
        stacks={g.cell_of_key(k): _rings_top_first(st) for k, st in board["stacks"].items()},
        markers={g.cell_of_key(k): int(m["player"]) for k, m in board["markers"].items()},
        collapsed={g.cell_of_key(k): int(o) for k, o in collapsed.items()},
        rings_in_hand=tuple(int(_get(p, "ringsInHand", "rings_in_hand", 0)) for p in seats),
        eliminated=tuple(int(_get(p, "eliminatedRings", "eliminated_rings", 0)) for p in seats),
    )


def differences(theirs: Position, ours: Position, g: Geometry) -> list[str]:
    """What differs, one phrase each ("marker 2,6: record 1, ours none"), board then counts."""
    out = _cell_differences("stack", theirs.stacks, ours.stacks, g)
    out += _cell_differences("marker", theirs.markers, ours.markers, g)
    out += _cell_differences("collapsed", theirs.collapsed, ours.collapsed, g)
    for name, a, b in (
        ("ringsInHand", theirs.rings_in_hand, ours.rings_in_hand),
        ("eliminatedRings", theirs.eliminated, ours.eliminated),
    ):
        out += [
            f"{name}[{seat}]: record {x}, ours {y}"
            for seat, (x, y) in enumerate(zip(a, b, strict=True), start=1)
            if x != y
        ]
    return out


def _cell_differences(
    name: str, theirs: dict[int, Any], ours: dict[int, Any], g: Geometry
) -> list[str]:
    return [
        f"{name} {g.key(c)}: record {_show(theirs.get(c))}, ours {_show(ours.get(c))}"
        for c in sorted(theirs.keys() | ours.keys())
        if theirs.get(c) != ours.get(c)
    ]


def _show(value: object) -> str:
    if value is None:
        return "none"
    return str(list(value)) if isinstance(value, tuple) else str(value)
