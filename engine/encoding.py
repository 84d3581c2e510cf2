"""Network input and output encoding: states to float32 planes, moves to policy indices.

The board symmetries acting on both are in engine.symmetry.

Grids: square8 8x8 and square19 19x19 (cell (x, y) at row y, column x); hex boards on
their axial bounding box, hex8 9x9 and hexagonal 25x25 (cube (x, y, z) at row x + r,
column y + r), with a validity plane marking the real cells.

Input planes, relative to the player to move (seat 0 = player to move, seat 1 = next, ...):
validity; per seat: controls-stack, height, cap height (both /10, capped at 1), marker,
collapsed, has-a-buried-ring; per seat scalars: rings in hand / rings per player,
eliminated / victory threshold, territory / territory minimum; one-hot phase; the
must-move / chain-capture cell; the pending territory region; scalars pending-line and
swap-offered.

Policy layout: ``policy_planes`` planes over the grid (index = plane * H * W + row * W +
col) followed by ``len(SPECIAL_MOVES)`` reserved indices:
  * place_ring: 3 planes (count 1-3) at the target cell;
  * move_stack / overtaking_capture / continue_capture_segment: one plane per
    (direction, distance) at the origin (a capture's target is implied by the ray);
  * recovery_slide: one plane per direction at the sliding marker; the variants of one
    slide (reward option, window, paying stack) share the index;
  * process_line / choose_line_option: one plane per (line axis, parity, option) at the
    centre of the collapsed cells (odd count: the middle cell; even count: the lower end,
    along the axis's positive direction, of the middle pair), which is unique per legal
    move and moves with the board's symmetries;
  * choose_territory_option: every cell of the region (``move_indices`` returns them all;
    priors sum over them and training mass is spread over them);
  * eliminate_rings_from_stack and forced_elimination: one plane at the stack;
  * swap, the voluntary skips and the bookkeeping no-ops: the reserved indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from engine import move as mv
from engine.config import GameConfig
from engine.geometry import Geometry, geometry
from engine.move import Move
from engine.movegen import cap_height
from engine.network import NetworkSpec
from engine.phases import PHASES
from engine.state import GameState

SPECIAL_MOVES = (
    mv.SWAP_SIDES, mv.SKIP_PLACEMENT, mv.SKIP_CAPTURE, mv.SKIP_RECOVERY, mv.SKIP_TERRITORY,
    mv.NO_PLACEMENT_ACTION, mv.NO_MOVEMENT_ACTION, mv.NO_LINE_ACTION, mv.NO_TERRITORY_ACTION,
)  # fmt: skip
_MOVEMENT = frozenset({mv.MOVE_STACK, mv.OVERTAKING_CAPTURE, mv.CONTINUE_CAPTURE})
_LINE = frozenset({mv.PROCESS_LINE, mv.CHOOSE_LINE_OPTION})
_ELIMINATION = frozenset({mv.ELIMINATE_RINGS, mv.FORCED_ELIMINATION})
PER_SEAT_PLANES = 9
GLOBAL_PLANES = 1 + len(PHASES) + 4
HEIGHT_SCALE = 10.0
BATCH_ENCODING = 8  # states from which encode_states works on the whole batch at once
_CHAIN_PHASES = ("capture", "chain_capture")  # the focus is the chain's stack


@dataclass(frozen=True)
class Layout:
    """Grid and policy layout of one config."""

    config: GameConfig
    height: int
    width: int
    grid: NDArray[np.int64]  # cell -> flat grid position
    max_distance: int
    place_plane: int
    move_plane: int
    recovery_plane: int
    line_plane: int
    territory_plane: int
    eliminate_plane: int
    policy_planes: int

    @property
    def in_planes(self) -> int:
        return GLOBAL_PLANES + PER_SEAT_PLANES * self.config.num_players

    @property
    def cells(self) -> int:
        return self.height * self.width

    @property
    def policy_size(self) -> int:
        return self.policy_planes * self.cells + len(SPECIAL_MOVES)

    def slot(self, plane: int, cell: int) -> int:
        return plane * self.cells + int(self.grid[cell])


def _grid(g: Geometry) -> tuple[int, int, NDArray[np.int64]]:
    if g.is_hex:
        side = 2 * g.radius + 1
        pos = [(x + g.radius) * side + (y + g.radius) for x, y, _ in map(g.coords, g.cells)]
        return side, side, np.array(pos, dtype=np.int64)
    pos = [y * g.size + x for x, y in map(g.coords, g.cells)]
    return g.size, g.size, np.array(pos, dtype=np.int64)


@cache
def layout(config: GameConfig) -> Layout:
    """The (cached) grid and policy layout of a config."""
    g = geometry(config.board)
    height, width, grid = _grid(g)
    max_distance = max(len(ray) for rays in g.rays for ray in rays)
    move_plane = 3
    recovery_plane = move_plane + g.num_dirs * max_distance
    line_plane = recovery_plane + g.num_dirs
    territory_plane = line_plane + len(g.line_axes) * 4
    return Layout(
        config, height, width, grid, max_distance, 0, move_plane, recovery_plane, line_plane,
        territory_plane, territory_plane + 1, territory_plane + 2,
    )  # fmt: skip


def _layout_of(state_or_config: GameState | GameConfig) -> Layout:
    config = state_or_config if isinstance(state_or_config, GameConfig) else state_or_config.config
    return layout(config)


# ---- input planes ------------------------------------------------------------------------
def encode_state(state: GameState) -> NDArray[np.float32]:
    """Float32 planes (C, H, W) relative to the player to move (see encode_states)."""
    lay = layout(state.config)
    planes = np.zeros((lay.in_planes, lay.cells), dtype=np.float32)
    _encode_one(state, planes, lay)
    return planes.reshape(lay.in_planes, lay.height, lay.width)


def encode_states(states: Sequence[GameState]) -> NDArray[np.float32]:
    """Planes of many states of one config at once, shape (N, C, H, W), each relative to
    its player to move.

    Per seat s (0 = the player to move, then in turn order), at base 1 + 9·s: controlled
    stacks, their height and cap height (/10, at most 1), markers, collapsed cells, stacks
    holding the seat's rings below the top, and (whole planes) rings in hand, eliminated
    rings and territory as fractions of their thresholds; then the phase one-hot, the
    focus cell (capture chain or the stack that must move), the pending region, a pending
    line and a swap on offer. From BATCH_ENCODING states on, built with array operations
    over the whole batch (the only per-state Python is reading the state's lists and its
    few stacks); smaller batches state by state, where the fixed cost of those operations
    would dominate.
    """
    if not states:
        raise ValueError("encode_states needs at least one state")
    lay = layout(states[0].config)
    for state in states:
        if state.config != lay.config:
            raise ValueError(f"encode_states got {state.config.name} among {lay.config.name}")
    count, n, grid = len(states), lay.config.num_players, lay.grid
    batch = np.zeros((count, lay.in_planes, lay.cells), dtype=np.float32)
    if count < BATCH_ENCODING:
        for state, planes in zip(states, batch, strict=True):
            _encode_one(state, planes, lay)
        return batch.reshape(count, lay.in_planes, lay.height, lay.width)
    batch[:, 0, grid] = 1.0
    current = np.fromiter((s.current_player for s in states), dtype=np.int64, count=count)
    # seat_base[k, p]: the first plane of player p's seat in state k (column 0 unused)
    seat_base = 1 + PER_SEAT_PLANES * ((np.arange(n + 1)[None, :] - current[:, None]) % n)
    _encode_cells(states, batch, grid, seat_base)
    config = lay.config
    # player of each seat: (current - 1 + seat) % n + 1
    seat_player = (current[:, None] - 1 + np.arange(n)[None, :]) % n + 1
    for offset, field, scale in (
        (6, "_hand", config.rings_per_player),
        (7, "_elim", config.victory_threshold),
        (8, "_terr", config.territory_minimum),
    ):
        values = np.array([getattr(s, field) for s in states], dtype=np.float64) / scale
        by_seat = np.take_along_axis(values, seat_player, axis=1)
        for seat in range(n):
            batch[:, 1 + PER_SEAT_PLANES * seat + offset, grid] = by_seat[:, seat, None]
    _encode_globals(states, batch, grid, 1 + PER_SEAT_PLANES * n)
    return batch.reshape(count, lay.in_planes, lay.height, lay.width)


def _encode_cells(
    states: Sequence[GameState],
    batch: NDArray[np.float32],
    grid: NDArray[np.int64],
    seat_base: NDArray[np.int64],
) -> None:
    """Markers, collapsed cells and stacks as array operations over the whole batch (the
    stacks read from one flattened list of every state's cells)."""
    # The states' per-cell lists, read without a call per cell (engine.state owns them).
    for field, offset in (("_markers", 3), ("_collapsed", 4)):
        owners = np.array([getattr(s, field) for s in states], dtype=np.int64)
        at, cells = np.nonzero(owners)
        batch[at, seat_base[at, owners[at, cells]] + offset, grid[cells]] = 1.0
    per_state = len(grid)
    every = list(chain.from_iterable(s._stacks for s in states))  # state-major, cell-minor
    heights = np.fromiter(map(len, every), dtype=np.int64, count=len(every))
    occupied = np.flatnonzero(heights)
    if not len(occupied):
        return
    stacks = [every[i] for i in occupied.tolist()]
    k_, pos = occupied // per_state, grid[occupied % per_state]
    base = seat_base[k_, np.fromiter((st[0] for st in stacks), dtype=np.int64, count=len(stacks))]
    batch[k_, base, pos] = 1.0
    batch[k_, base + 1, pos] = np.minimum(heights[occupied] / HEIGHT_SCALE, 1.0)
    caps = np.fromiter(map(cap_height, stacks), dtype=np.int64, count=len(stacks))
    batch[k_, base + 2, pos] = np.minimum(caps / HEIGHT_SCALE, 1.0)
    buried = [
        (at, owner)
        for at, st in zip(occupied.tolist(), stacks, strict=True)
        if len(st) > 1
        for owner in set(st[1:])
    ]
    if buried:
        at, owner = np.array(buried).T
        kb = at // per_state
        batch[kb, seat_base[kb, owner] + 5, grid[at % per_state]] = 1.0


def _encode_globals(
    states: Sequence[GameState], batch: NDArray[np.float32], grid: NDArray[np.int64], base: int
) -> None:
    rows = np.arange(len(states))
    phase = np.fromiter((PHASES.index(s.phase) for s in states), dtype=np.int64)
    batch[rows[:, None], (base + phase)[:, None], grid[None, :]] = 1.0
    base += len(PHASES)
    for k, state in enumerate(states):
        focus = state.chain_pos if state.phase in _CHAIN_PHASES else state.must_move
        if focus >= 0:
            batch[k, base, grid[focus]] = 1.0
        if state.pending_region:
            batch[k, base + 1, grid[list(state.pending_region)]] = 1.0
    batch[:, base + 2, grid] = np.array([float(s.pending_line) for s in states])[:, None]
    batch[:, base + 3, grid] = np.array([float(s.swap_offered) for s in states])[:, None]


def _encode_one(state: GameState, planes: NDArray[np.float32], lay: Layout) -> None:
    """One state's planes, written into `planes` (C, H·W): the path for small batches."""
    n = state.num_players
    planes[0, lay.grid] = 1.0
    # base plane of each player's seat (index 0 unused): seat 0 = the player to move
    seat_base = np.zeros(n + 1, dtype=np.int64)
    for seat in range(n):
        seat_base[(state.current_player - 1 + seat) % n + 1] = 1 + PER_SEAT_PLANES * seat
    _encode_one_cells(state, planes, lay, seat_base)
    for player in range(1, n + 1):
        base = int(seat_base[player])
        planes[base + 6, lay.grid] = state.rings_in_hand(player) / state.rings_per_player
        planes[base + 7, lay.grid] = state.eliminated_rings(player) / state.victory_threshold
        planes[base + 8, lay.grid] = state.territory(player) / state.territory_minimum
    _encode_one_globals(state, planes, lay, 1 + PER_SEAT_PLANES * n)


def _encode_one_cells(
    state: GameState, planes: NDArray[np.float32], lay: Layout, seat_base: NDArray[np.int64]
) -> None:
    """Markers and collapsed cells as array operations; stacks cell by cell (few)."""
    # The state's per-cell lists, read without a call per cell (engine.state owns them).
    stacks = state._stacks
    for owners, offset in ((np.asarray(state._markers), 3), (np.asarray(state._collapsed), 4)):
        cells = np.flatnonzero(owners)
        planes[seat_base[owners[cells]] + offset, lay.grid[cells]] = 1.0
    for cell in [c for c, st in enumerate(stacks) if st]:
        stack, pos = stacks[cell], lay.grid[cell]
        base = seat_base[stack[0]]
        planes[base, pos] = 1.0
        planes[base + 1, pos] = min(len(stack) / HEIGHT_SCALE, 1.0)
        planes[base + 2, pos] = min(state.cap_height(cell) / HEIGHT_SCALE, 1.0)
        for owner in set(stack[1:]):
            planes[seat_base[owner] + 5, pos] = 1.0


def _encode_one_globals(
    state: GameState, planes: NDArray[np.float32], lay: Layout, base: int
) -> None:
    planes[base + PHASES.index(state.phase), lay.grid] = 1.0
    base += len(PHASES)
    focus = state.chain_pos if state.phase in _CHAIN_PHASES else state.must_move
    if focus >= 0:
        planes[base, lay.grid[focus]] = 1.0
    for cell in state.pending_region or ():
        planes[base + 1, lay.grid[cell]] = 1.0
    planes[base + 2, lay.grid] = float(state.pending_line)
    planes[base + 3, lay.grid] = float(state.swap_offered)


# ---- moves <-> policy indices ----------------------------------------------------------------
def _ordered_line(g: Geometry, cells: Sequence[int]) -> tuple[list[int], int]:
    """The cells of a straight segment ordered along its axis's positive direction, and the axis."""
    members = set(cells)
    if len(members) == 1:
        raise ValueError(f"a line decision needs at least 2 cells, got {cells!r}")
    first, second = sorted(members)[:2]
    direction, _ = g.direction_between(first, second) or (-1, 0)
    axis = next((i for i, d in enumerate(g.line_axes) if direction in (d, g.opposite[d])), None)
    if axis is None:
        raise ValueError(f"cells {cells!r} are not on a line axis of {g.board}")
    forward = g.line_axes[axis]
    start = next(c for c in members if g.step[c][g.opposite[forward]] not in members)
    return [start, *(c for c in g.rays[start][forward][: len(members) - 1])], axis


def _line_slot(lay: Layout, g: Geometry, move: Move) -> int:
    ordered, axis = _ordered_line(g, move.collapse or move.cells)
    parity = 1 - len(ordered) % 2
    centre = ordered[(len(ordered) - 1) // 2]
    option = 1 if move.option == 2 else 0
    return lay.slot(lay.line_plane + (axis * 2 + parity) * 2 + option, centre)


def move_indices(state_or_config: GameState | GameConfig, move: Move) -> tuple[int, ...]:
    """Every policy slot of a move (one, except a territory region: one per cell)."""
    return _move_slots(_layout_of(state_or_config).config, move)


@lru_cache(maxsize=1 << 18)
def _move_slots(config: GameConfig, move: Move) -> tuple[int, ...]:
    """A move's slots depend on the config and the move only, so they are computed once."""
    lay = layout(config)
    g = geometry(config.board)
    kind = move.type
    if kind in SPECIAL_MOVES:
        return (lay.policy_planes * lay.cells + SPECIAL_MOVES.index(kind),)
    if kind == mv.PLACE_RING:
        return (lay.slot(lay.place_plane + move.count - 1, move.to_cell),)  # type: ignore[arg-type]
    if kind in _MOVEMENT or kind == mv.RECOVERY_SLIDE:
        found = g.direction_between(move.from_cell, move.to_cell)  # type: ignore[arg-type]
        if found is None:
            raise ValueError(f"move {move.to_notation()!r} is not along a ray")
        direction, distance = found
        if kind == mv.RECOVERY_SLIDE:
            return (lay.slot(lay.recovery_plane + direction, move.from_cell),)  # type: ignore[arg-type]
        plane = lay.move_plane + direction * lay.max_distance + distance - 1
        return (lay.slot(plane, move.from_cell),)  # type: ignore[arg-type]
    if kind in _LINE:
        return (_line_slot(lay, g, move),)
    if kind == mv.CHOOSE_TERRITORY_OPTION:
        return tuple(lay.slot(lay.territory_plane, c) for c in move.cells)
    if kind in _ELIMINATION:
        return (lay.slot(lay.eliminate_plane, move.to_cell),)  # type: ignore[arg-type]
    raise ValueError(f"no policy index for move type {kind!r} ({move.to_notation()!r})")


def move_to_index(state_or_config: GameState | GameConfig, move: Move) -> int:
    """The policy index of a move (a territory region's first cell)."""
    return move_indices(state_or_config, move)[0]


def policy_size(config: GameConfig) -> int:
    return layout(config).policy_size


def network_spec(config: GameConfig, *, blocks: int, channels: int) -> NetworkSpec:
    """The NetworkSpec matching this encoding for a config (spatial policy head)."""
    lay = layout(config)
    return NetworkSpec(
        config=config.name, in_planes=lay.in_planes, height=lay.height, width=lay.width,
        policy_size=lay.policy_size, num_players=config.num_players, blocks=blocks,
        channels=channels, policy_planes=lay.policy_planes,
    )  # fmt: skip


def legal_policy_mask(state: GameState, moves: Iterable[Move] | None = None) -> NDArray[np.bool_]:
    """Boolean mask over the policy of the slots the legal moves occupy."""
    mask = np.zeros(layout(state.config).policy_size, dtype=bool)
    slots, _ = _slots_of(state.config, state.legal_moves() if moves is None else list(moves))
    mask[slots] = True
    return mask


def _slots_of(
    config: GameConfig, moves: Sequence[Move]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The slots of ``moves`` flattened, and for each slot the position of its move."""
    per_move = [_move_slots(config, m) for m in moves]
    slots = np.fromiter((i for indices in per_move for i in indices), dtype=np.int64)
    owner = np.repeat(np.arange(len(moves)), [len(indices) for indices in per_move])
    return slots, owner


def legal_priors(
    state: GameState, moves: Sequence[Move], logits: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Priors of ``moves`` from raw policy logits: the softmax over the legal slots, each
    move taking the mass of its slots (a slot shared by several moves split evenly).

    Equals ``move_priors(state, moves, softmax of logits over legal_policy_mask)``."""
    if not moves:
        return np.zeros(0)
    per_move = [_move_slots(state.config, m) for m in moves]
    if all(len(indices) == 1 for indices in per_move):
        slots = [indices[0] for indices in per_move]
        if len(set(slots)) == len(slots):  # the common case: one slot per move, none shared
            row = np.asarray(logits, dtype=np.float64)[slots]
            exp = np.exp(row - row.max())
            return exp / exp.sum()
    return _shared_priors(state.config, moves, logits)


_SINGLE_SLOTS: dict[GameConfig, dict[Move, int]] = {}  # a move's one slot, or -1 for a region


def _single_slot(config: GameConfig, table: dict[Move, int], move: Move) -> int:
    slots = _move_slots(config, move)
    found = table[move] = slots[0] if len(slots) == 1 else -1
    return found


def batch_legal_priors(
    config: GameConfig, moves: Sequence[Sequence[Move]], logits: NDArray[np.floating]
) -> list[NDArray[np.float64]]:
    """`legal_priors` of a batch of states of one config (``logits`` one row per state):
    the states whose moves each take one slot of their own (nearly all) in one gather and
    one segmented softmax, the rest one by one."""
    table = _SINGLE_SLOTS.setdefault(config, {})
    out: list[NDArray[np.float64]] = [np.zeros(0)] * len(moves)
    flat: list[int] = []
    rows: list[int] = []
    sizes: list[int] = []
    get = table.get
    for k, legal in enumerate(moves):
        if not legal:
            continue
        slots = [s if (s := get(m)) is not None else _single_slot(config, table, m) for m in legal]
        if min(slots) < 0 or len(set(slots)) != len(slots):
            out[k] = _shared_priors(config, legal, logits[k])
            continue
        flat.extend(slots)
        rows.append(k)
        sizes.append(len(slots))
    if not rows:
        return out
    counts = np.array(sizes)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    row_of = np.repeat(np.array(rows), counts)
    values = np.asarray(logits[row_of, np.array(flat)], dtype=np.float64)
    exp = np.exp(values - np.repeat(np.maximum.reduceat(values, starts), counts))
    probabilities = exp / np.repeat(np.add.reduceat(exp, starts), counts)
    for k, priors in zip(rows, np.split(probabilities, starts[1:]), strict=True):
        out[k] = priors
    return out


def _shared_priors(
    config: GameConfig, moves: Sequence[Move], logits: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Priors when moves share a slot or take several: each slot's mass split evenly
    among its moves, a move taking the sum over its slots."""
    flat, owner = _slots_of(config, moves)
    unique, inverse, sharing = np.unique(flat, return_inverse=True, return_counts=True)
    row = np.asarray(logits, dtype=np.float64)[unique]
    exp = np.exp(row - row.max())
    mass = (exp / exp.sum())[inverse] / sharing[inverse]
    priors = np.bincount(owner, weights=mass, minlength=len(moves))
    total = priors.sum()
    return priors / total if total > 0 else np.full(len(moves), 1.0 / len(moves))


def index_to_move(state: GameState, index: int) -> Move:
    """The first legal move of ``state`` that occupies policy slot ``index``."""
    for move in state.legal_moves():
        if index in move_indices(state, move):
            return move
    raise ValueError(f"policy index {index} is no legal move of {state!r}")


def move_priors(
    state: GameState, moves: Sequence[Move], probabilities: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Priors for ``moves`` from a policy distribution: the mass of their slots, renormalised.

    Moves that share a slot (variants of one recovery slide) split its mass evenly.
    """
    slots = [move_indices(state, m) for m in moves]
    sharing: dict[int, int] = {}
    for indices in slots:
        for i in indices:
            sharing[i] = sharing.get(i, 0) + 1
    priors = np.array(
        [sum(float(probabilities[i]) / sharing[i] for i in indices) for indices in slots]
    )
    total = priors.sum()
    return priors / total if total > 0 else np.full(len(moves), 1.0 / len(moves))


def visits_to_policy(
    state_or_config: GameState | GameConfig, visits: Mapping[Move, float]
) -> dict[int, float]:
    """A visit distribution over moves as policy-index weights (a region's share spread)."""
    out: dict[int, float] = {}
    for move, count in visits.items():
        indices = move_indices(state_or_config, move)
        for i in indices:
            out[i] = out.get(i, 0.0) + count / len(indices)
    return out
