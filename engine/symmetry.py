"""Board symmetries and how they act on the network's input planes and policy slots.

Each board's symmetry group (square: the 8 rotations and reflections of the dihedral group;
hex: the 12 of the hexagon) maps cells and directions; `policy_permutation` carries that map
to every policy slot of engine.encoding's layout (line slots move with the centre cell and
axis parity), so a training sample can be augmented by any symmetry
(`symmetry_augmenter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from engine.config import GameConfig
from engine.encoding import Layout, layout
from engine.geometry import Geometry, geometry


@dataclass(frozen=True)
class Symmetry:
    """One board symmetry: where every cell and every direction goes."""

    name: str
    cell: NDArray[np.int64]  # cell -> image cell
    direction: tuple[int, ...]  # direction index -> image direction index


def _square_maps(n: int) -> list[tuple[str, object]]:
    m = n - 1
    return [
        ("identity", lambda x, y: (x, y)),
        ("rot90", lambda x, y: (m - y, x)),
        ("rot180", lambda x, y: (m - x, m - y)),
        ("rot270", lambda x, y: (y, m - x)),
        ("flip_x", lambda x, y: (m - x, y)),
        ("flip_y", lambda x, y: (x, m - y)),
        ("transpose", lambda x, y: (y, x)),
        ("antitranspose", lambda x, y: (m - y, m - x)),
    ]


def _hex_maps() -> list[tuple[str, object]]:
    def rotate(c: tuple[int, ...], times: int) -> tuple[int, ...]:
        for _ in range(times):
            c = (-c[2], -c[0], -c[1])
        return c

    maps: list[tuple[str, object]] = []
    for reflect in (False, True):
        for times in range(6):
            name = f"{'reflect_' if reflect else ''}rot{60 * times}"
            maps.append(
                (name, lambda x, y, z, t=times, r=reflect: rotate((x, z, y) if r else (x, y, z), t))
            )
    return maps


def _direction_image(g: Geometry, transform: object, direction: int) -> int:
    origin = (0, 0, 0) if g.is_hex else (0, 0)
    a = transform(*origin)  # type: ignore[operator]
    b = transform(*g.dirs[direction])  # type: ignore[operator]
    return g.dirs.index(tuple(q - p for p, q in zip(a, b, strict=True)))


@cache
def symmetries(board: str) -> tuple[Symmetry, ...]:
    """The board's symmetries (8 on square boards, 12 on hex boards); the first is the identity."""
    g = geometry(board)
    maps = _hex_maps() if g.is_hex else _square_maps(g.size)
    out = []
    for name, transform in maps:
        cells = np.array([g.cell_of(transform(*g.coords(c))) for c in g.cells], dtype=np.int64)  # type: ignore[operator]
        directions = tuple(_direction_image(g, transform, d) for d in range(g.num_dirs))
        out.append(Symmetry(name, cells, directions))
    return tuple(out)


def _complete(mapping: dict[int, int], size: int) -> NDArray[np.int64]:
    """A permutation of range(size) extending ``mapping``; unmapped slots pair up in order."""
    perm = np.full(size, -1, dtype=np.int64)
    for source, target in mapping.items():
        perm[source] = target
    free_sources = [i for i in range(size) if perm[i] < 0]
    free_targets = sorted(set(range(size)) - set(mapping.values()))
    perm[free_sources] = free_targets
    return perm


@cache
def grid_permutation(config: GameConfig, index: int) -> NDArray[np.int64]:
    """Flat grid position -> image position under symmetry ``index`` (off-board fixed)."""
    lay = layout(config)
    sym = symmetries(config.board)[index]
    return _complete(
        {int(lay.grid[c]): int(lay.grid[sym.cell[c]]) for c in range(len(sym.cell))}, lay.cells
    )


def _line_slot_image(lay: Layout, g: Geometry, sym: Symmetry, plane: int, cell: int) -> int | None:
    axis, rest = divmod(plane - lay.line_plane, 4)
    parity, option = divmod(rest, 2)
    forward = g.line_axes[axis]
    image_dir = sym.direction[forward]
    image_axis = next(i for i, d in enumerate(g.line_axes) if image_dir in (d, g.opposite[d]))
    centre = int(sym.cell[cell])
    if parity:
        other = g.step[cell][forward]
        if other < 0:
            return None
        if image_dir != g.line_axes[image_axis]:
            centre = int(sym.cell[other])
    return lay.slot(lay.line_plane + (image_axis * 2 + parity) * 2 + option, centre)


def _plane_image(lay: Layout, sym: Symmetry, plane: int) -> int:
    if lay.move_plane <= plane < lay.recovery_plane:
        direction, distance = divmod(plane - lay.move_plane, lay.max_distance)
        return lay.move_plane + sym.direction[direction] * lay.max_distance + distance
    if lay.recovery_plane <= plane < lay.line_plane:
        return lay.recovery_plane + sym.direction[plane - lay.recovery_plane]
    return plane


@cache
def policy_permutation(config: GameConfig, index: int) -> NDArray[np.int64]:
    """Policy slot -> image slot under symmetry ``index``."""
    lay = layout(config)
    g = geometry(config.board)
    sym = symmetries(config.board)[index]
    mapping: dict[int, int] = {}
    for plane in range(lay.policy_planes):
        for cell in g.cells:
            if lay.line_plane <= plane < lay.territory_plane:
                image = _line_slot_image(lay, g, sym, plane, cell)
            else:
                image = lay.slot(_plane_image(lay, sym, plane), int(sym.cell[cell]))
            if image is not None:
                mapping[lay.slot(plane, cell)] = image
    specials = lay.policy_planes * lay.cells
    mapping.update({i: i for i in range(specials, lay.policy_size)})
    return _complete(mapping, lay.policy_size)


def transform_planes(
    planes: NDArray[np.float32], config: GameConfig, index: int
) -> NDArray[np.float32]:
    """Input planes (C, H, W) of the symmetric position."""
    perm = grid_permutation(config, index)
    flat = planes.reshape(planes.shape[0], -1)
    out = np.empty_like(flat)
    out[:, perm] = flat
    return out.reshape(planes.shape)


def transform_policy(
    policy: NDArray[np.generic], config: GameConfig, index: int
) -> NDArray[np.generic]:
    """A dense policy vector (or mask) of the symmetric position."""
    out = np.empty_like(policy)
    out[policy_permutation(config, index)] = policy
    return out


def transform_indices(
    indices: NDArray[np.int64], config: GameConfig, index: int
) -> NDArray[np.int64]:
    return policy_permutation(config, index)[indices]


def symmetry_augmenter(config: GameConfig):  # -> engine.training.Augment
    """A training augmentation hook applying a uniformly drawn symmetry to each sample."""
    from engine.training import Sample, transformed

    count = len(symmetries(config.board))

    def augment(sample: Sample, rng: np.random.Generator) -> Sample:
        index = int(rng.integers(count))
        if index == 0:
            return sample
        mask = sample.legal_mask
        return transformed(
            sample,
            transform_planes(sample.planes, config, index),
            (transform_indices(sample.policy[0], config, index), sample.policy[1]),
            None if mask is None else transform_policy(mask, config, index).astype(bool),
        )

    return augment
