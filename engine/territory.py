"""Territory: disconnected-region discovery, eligibility and border markers (R140-R145)."""

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


def _components(s: GameState, border: int) -> list[list[int]]:
    """Territory-connected components of non-collapsed cells, `border` markers acting as walls."""
    collapsed, markers = s._collapsed, s._markers
    nbrs = s.geometry.territory_neighbors
    seen = [False] * len(collapsed)
    comps: list[list[int]] = []
    for start in s.geometry.cells:
        if seen[start] or collapsed[start] or (border and markers[start] == border):
            continue
        seen[start] = True
        comp = [start]
        i = 0
        while i < len(comp):
            for y in nbrs[comp[i]]:
                if not seen[y] and not collapsed[y] and not (border and markers[y] == border):
                    seen[y] = True
                    comp.append(y)
            i += 1
        comps.append(comp)
    return comps


def find_regions(s: GameState) -> dict[Region, int]:
    """Disconnected regions (R141, R142) mapped to the marker colour sealing them (0: none)."""
    active = active_colours(s)
    if not active:
        return {}
    stacks = s._stacks
    colours = sorted({m for m in s._markers if m})
    found: dict[Region, int] = {}
    for border in [0, *colours]:
        comps = _components(s, border)
        if len(comps) < 2 and border == 0:
            continue
        for comp in comps:
            present = {stacks[c][0] for c in comp if stacks[c]}
            if len(present) < len(active) and present <= active:
                region = tuple(sorted(comp))
                found.setdefault(region, border)
    return found


def border_markers(s: GameState, region: Region, border: int) -> list[int]:
    """Markers of colour `border` that seal the region and collapse with it (R145 step 2)."""
    if not border:
        return []
    g = s.geometry
    markers = s._markers
    inside = set(region)
    out = {
        y
        for c in region
        for y in g.territory_neighbors[c]
        if y not in inside and markers[y] == border
    }
    if not g.is_hex:
        frontier = list(out)
        while frontier:
            c = frontier.pop()
            for y in g.neighbors[c]:
                if y not in out and y not in inside and markers[y] == border:
                    out.add(y)
                    frontier.append(y)
    return sorted(out)
