"""Territory: disconnected-region discovery, eligibility and border markers (R140-R145).

How the border-marker rule is read (R145 step 2; COMPLETE_RULES §12.2). Processing a
region R collapses "the markers of the single border colour B that take part in at least
one minimal blocking path"; B markers "that do not participate in any such blocking path
remain as markers". A region is a maximal territory-connected set of cells that are
neither collapsed nor B markers, so every cell territory-adjacent to R (4-neighbours on
square boards, 6 on hex boards) is collapsed or a B marker. A set of B markers blocks R
when, with the collapsed cells and the board edge, it cuts every territory-adjacency
route out of R; any such set must hold each B marker adjacent to R (a route leaves R
through that marker's own cell otherwise), and those adjacent markers already block.
They are therefore the one minimal blocking set, and they are what collapses. A B marker
that touches R only diagonally on a square board, or that lies behind the adjacent ones
(a second layer of the wall, a chain running away from R), blocks nothing and stays.
The rule reads the same on square and hex boards. (RingRift's engines also flood every
marker 8-connected to the adjacent ones on square boards and hex8; ringloop does not.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.state import GameState

Region = tuple[int, ...]


def active_colours(s: GameState) -> set[int]:
    """Players with at least one ring anywhere on the board (R142)."""
    out: set[int] = set()
    for st in s._stacks:
        if st:
            out.update(st)
    return out


def _component_masks(s: GameState, open_mask: int) -> list[int]:
    """Territory-connected components of `open_mask`, as bit masks (see Geometry.grow), in
    the order of their lowest cells. The first flood starts at the board's centre when it
    is open (about half the steps of one from a corner: nearly always the only component)."""
    g = s.geometry
    grow = g.grow
    comps = []
    rest = open_mask
    seed = g.center_bit if open_mask & g.center_bit else open_mask & -open_mask
    while rest:
        comp = seed
        while (grown := grow(comp, rest)) != comp:
            comp = grown
        comps.append(comp)
        rest &= ~comp
        seed = rest & -rest
    comps.sort(key=lambda mask: mask & -mask)
    return comps


def find_regions(s: GameState) -> dict[Region, int]:
    """Disconnected regions (R141, R142) mapped to the marker colour sealing them (0: none)."""
    g = s.geometry
    bit = g.bit
    n = s.num_players
    controlled = [0] * (n + 1)
    marker_bits = [0] * (n + 1)
    collapsed_bits = 0
    active: set[int] = set()
    for c, st in enumerate(s._stacks):
        if st:
            controlled[st[0]] |= bit[c]
            active.update(st)
    if not active:
        return {}
    for c, m in enumerate(s._markers):
        if m:
            marker_bits[m] |= bit[c]
    for c, o in enumerate(s._collapsed):
        if o:
            collapsed_bits |= bit[c]
    base = g.valid_mask & ~collapsed_bits
    found: dict[Region, int] = {}
    for border in range(n + 1):
        if border and not marker_bits[border]:
            continue
        comps = _component_masks(s, base & ~marker_bits[border])
        if len(comps) < 2:
            continue
        for comp in comps:
            present = sum(1 for p in active if controlled[p] & comp)
            if present < len(active):
                region = tuple(sorted(g.cells_of_mask(comp)))
                found.setdefault(region, border)
    return found


def border_markers(s: GameState, region: Region, border: int) -> list[int]:
    """Markers of colour `border` territory-adjacent to the region: the ones that seal it
    and collapse with it (R145 step 2; see the module docstring)."""
    if not border:
        return []
    markers = s._markers
    inside = set(region)
    neighbours = s.geometry.territory_neighbors
    return sorted(
        {y for c in region for y in neighbours[c] if y not in inside and markers[y] == border}
    )
