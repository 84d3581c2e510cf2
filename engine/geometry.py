"""Board geometry: flat cell indices, coordinates, RingRift position keys, rays and neighbours."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from engine.config import BOARD_TYPES, is_hex

Cell = int

SQUARE_DIRS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))
SQUARE_LINE_AXES = (0, 1, 2, 7)  # E, SE, S, NE (indices into SQUARE_DIRS)
SQUARE_TERRITORY_DIRS = (0, 2, 4, 6)
HEX_DIRS = ((1, 0, -1), (1, -1, 0), (0, -1, 1), (-1, 0, 1), (-1, 1, 0), (0, 1, -1))
HEX_LINE_AXES = (0, 1, 2)

_SIZES = {"square8": 8, "square19": 19, "hex8": 4, "hexagonal": 12}

Grow = Callable[[int, int], int]


def _grower(offsets: Sequence[int]) -> Grow:
    """``grow(mask, within)``: the cells of ``within`` in ``mask`` or territory-adjacent to
    it, for a grid with these neighbour offsets (square: +-1, +-width; hex: +-1, +-width,
    +-(width - 1)), as one expression: a territory check floods with it ~50 times."""
    up = sorted(o for o in offsets if o > 0)
    down = sorted(-o for o in offsets if o < 0)
    if up != down or len(up) not in (2, 3):
        raise ValueError(f"neighbour offsets {offsets!r} are not symmetric square or hex ones")
    if len(up) == 2:
        a, b = up
        return lambda mask, within: (mask | mask << a | mask >> a | mask << b | mask >> b) & within
    a, b, c = up
    return lambda mask, within: (
        (mask | mask << a | mask >> a | mask << b | mask >> b | mask << c | mask >> c) & within
    )


class Geometry:
    """Precomputed tables for one board type; get instances through `geometry(board)`."""

    def __init__(self, board: str) -> None:
        if board not in BOARD_TYPES:
            raise ValueError(f"unknown board type {board!r}; expected one of {BOARD_TYPES}")
        self.board = board
        self.is_hex = is_hex(board)
        n = _SIZES[board]
        if self.is_hex:
            self.radius = n
            self.size = 2 * n + 1  # RingRift's bounding-box "size" field
            self._coords: list[tuple[int, ...]] = [
                (x, y, -x - y)
                for x in range(-n, n + 1)
                for y in range(-n, n + 1)
                if abs(x + y) <= n
            ]
            self.dirs: tuple[tuple[int, ...], ...] = HEX_DIRS
            self.line_axes: tuple[int, ...] = HEX_LINE_AXES
            territory_dirs: tuple[int, ...] = tuple(range(6))
        else:
            self.radius = 0
            self.size = n
            self._coords = [(x, y) for y in range(n) for x in range(n)]
            self.dirs = SQUARE_DIRS
            self.line_axes = SQUARE_LINE_AXES
            territory_dirs = SQUARE_TERRITORY_DIRS
        self.num_cells = len(self._coords)
        self._index = {c: i for i, c in enumerate(self._coords)}
        self.num_dirs = len(self.dirs)
        self.keys: tuple[str, ...] = tuple(",".join(map(str, c)) for c in self._coords)
        self._key_index = {k: i for i, k in enumerate(self.keys)}
        self.rays: tuple[tuple[tuple[Cell, ...], ...], ...] = tuple(
            tuple(self._ray(c, d) for d in self.dirs) for c in self._coords
        )
        self.step: tuple[tuple[int, ...], ...] = tuple(
            tuple(r[0] if r else -1 for r in cell_rays) for cell_rays in self.rays
        )
        self.neighbors: tuple[tuple[Cell, ...], ...] = tuple(
            tuple(s for s in steps if s >= 0) for steps in self.step
        )
        self.territory_neighbors: tuple[tuple[Cell, ...], ...] = tuple(
            tuple(self.step[c][d] for d in territory_dirs if self.step[c][d] >= 0)
            for c in range(self.num_cells)
        )
        self.cells = range(self.num_cells)
        self._build_grid()
        self.opposite: tuple[int, ...] = tuple(
            (d + self.num_dirs // 2) % self.num_dirs for d in range(self.num_dirs)
        )
        # ray_pos[a][b] = (direction, distance) for every b on a straight ray from a
        self.ray_pos: tuple[dict[Cell, tuple[int, int]], ...] = tuple(
            {b: (d, k) for d, ray in enumerate(cell_rays) for k, b in enumerate(ray, 1)}
            for cell_rays in self.rays
        )

    def _build_grid(self) -> None:
        """Embed cells in a padded rectangular grid so bit masks can flood-fill by shifting."""
        if self.is_hex:
            r = self.radius
            self.grid_width = 2 * r + 2
            self.grid_index = tuple((c[1] + r) * self.grid_width + c[0] + r for c in self._coords)
            offsets = [d[1] * self.grid_width + d[0] for d in HEX_DIRS]
        else:
            self.grid_width = self.size + 1
            self.grid_index = tuple(c[1] * self.grid_width + c[0] for c in self._coords)
            offsets = [1, -1, self.grid_width, -self.grid_width]
        self.territory_offsets = tuple(offsets)
        self.grow = _grower(self.territory_offsets)
        # grid offset of one step in each movement direction (self.dirs), for bit masks
        self.move_offsets = tuple(d[1] * self.grid_width + d[0] for d in self.dirs)
        self.cell_of_grid = {g: c for c, g in enumerate(self.grid_index)}
        self.valid_mask = sum(1 << g for g in self.grid_index)
        self.bit = tuple(1 << g for g in self.grid_index)
        middle = (0, 0, 0) if self.is_hex else (self.size // 2, self.size // 2)
        self.center_bit = self.bit[self._index[middle]]  # a flood fill's shortest start

    def cells_of_mask(self, mask: int) -> list[Cell]:
        out = []
        cog = self.cell_of_grid
        while mask:
            low = mask & -mask
            out.append(cog[low.bit_length() - 1])
            mask ^= low
        return out

    def _ray(self, start: tuple[int, ...], d: tuple[int, ...]) -> tuple[Cell, ...]:
        out = []
        cur = tuple(a + b for a, b in zip(start, d, strict=True))
        while cur in self._index:
            out.append(self._index[cur])
            cur = tuple(a + b for a, b in zip(cur, d, strict=True))
        return tuple(out)

    def coords(self, cell: Cell) -> tuple[int, ...]:
        """(x, y) on square boards, cube (x, y, z) on hex boards."""
        return self._coords[cell]

    def cell_of(self, coords: tuple[int, ...]) -> Cell:
        coords = tuple(coords)
        if self.is_hex and len(coords) == 2:
            coords = (coords[0], coords[1], -coords[0] - coords[1])
        try:
            return self._index[coords]
        except KeyError:
            raise ValueError(f"{coords!r} is not a cell of {self.board}") from None

    def key(self, cell: Cell) -> str:
        """RingRift position key: "x,y" or "x,y,z"."""
        return self.keys[cell]

    def cell_of_key(self, key: str) -> Cell:
        cell = self._key_index.get(key.replace(" ", ""))
        if cell is not None:
            return cell
        try:
            parts = tuple(int(p) for p in key.split(","))
        except ValueError:
            raise ValueError(f"bad position key {key!r} for {self.board}") from None
        return self.cell_of(parts)

    def position(self, cell: Cell) -> dict[str, int]:
        """RingRift position object {x, y[, z]}."""
        c = self._coords[cell]
        if self.is_hex:
            return {"x": c[0], "y": c[1], "z": c[2]}
        return {"x": c[0], "y": c[1]}

    def cell_of_position(self, pos: dict) -> Cell:
        if self.is_hex:
            x, y = pos["x"], pos["y"]
            z = pos.get("z")
            return self.cell_of((x, y, -x - y if z is None else z))
        return self.cell_of((pos["x"], pos["y"]))

    def distance(self, a: Cell, b: Cell) -> int:
        ca, cb = self._coords[a], self._coords[b]
        if self.is_hex:
            return sum(abs(p - q) for p, q in zip(ca, cb, strict=True)) // 2
        return max(abs(p - q) for p, q in zip(ca, cb, strict=True))

    def direction_between(self, a: Cell, b: Cell) -> tuple[int, int] | None:
        """(direction index, distance) if b lies on a straight ray from a, else None."""
        return self.ray_pos[a].get(b)

    def __repr__(self) -> str:
        return f"Geometry({self.board!r})"


@cache
def geometry(board: str) -> Geometry:
    """The shared, cached Geometry of a board type."""
    return Geometry(board)
