"""GameState: the RingRift position, its legal moves and the phase machine that applies them."""

from __future__ import annotations

import random
from typing import Any, cast

from engine import movegen as mg
from engine.config import GameConfig
from engine.geometry import Cell, Geometry, geometry
from engine.lines import find_lines, line_moves
from engine.move import (
    BOOKKEEPING,
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    CONTINUE_CAPTURE,
    ELIMINATE_RINGS,
    FORCED_ELIMINATION,
    MOVE_STACK,
    NO_LINE_ACTION,
    NO_MOVEMENT_ACTION,
    NO_PLACEMENT_ACTION,
    NO_TERRITORY_ACTION,
    OVERTAKING_CAPTURE,
    PLACE_RING,
    PROCESS_LINE,
    RECOVERY_SLIDE,
    SKIP_CAPTURE,
    SKIP_PLACEMENT,
    SKIP_RECOVERY,
    SKIP_TERRITORY,
    SWAP_SIDES,
    VOLUNTARY_SKIPS,
    Move,
)
from engine.territory import border_markers, find_regions

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

LPS_ROUNDS_REQUIRED = 3
_MASK = (1 << 64) - 1
_NEVER = 1 << 30


class IllegalMoveError(ValueError):
    """A move that is not legal in the position it was applied to."""


def _zobrist_table(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(64) for _ in range(n)]


_KEYS: dict[str, tuple[list[int], list[int]]] = {}


def _keys(g: Geometry) -> tuple[list[int], list[int]]:
    """(marker keys, collapsed keys) indexed by cell * 5 + owner; fixed per board."""
    if g.board not in _KEYS:
        size = g.num_cells * 5
        _KEYS[g.board] = (_zobrist_table(size, 1), _zobrist_table(size, 2))
    return _KEYS[g.board]


def _stack_key(cell: int, st: tuple[int, ...]) -> int:
    return hash((cell, st)) & _MASK if st else 0


class GameState:
    """A mutable RingRift position. `apply` validates; `apply_unchecked` trusts its move."""

    __slots__ = (
        "config", "geometry", "num_players", "line_length", "rings_per_player",
        "victory_threshold", "territory_minimum", "_stacks", "_markers", "_collapsed",
        "_hand", "_elim", "_elim_colour", "_terr", "current_player", "phase", "must_move",
        "chain_pos", "pending_line", "pending_region", "turn_changed", "turn_recovery",
        "swap_rule", "swap_offered", "swapped", "winner", "victory_reason", "move_count",
        "turn_count", "last_actor", "elimination_turn", "lps_streak", "lps_had",
        "lps_took", "_board_hash", "_mkeys", "_ckeys",
    )  # fmt: skip

    def __init__(self, config: GameConfig) -> None:
        g = geometry(config.board)
        n = config.num_players
        self.config = config
        self.geometry = g
        self.num_players = n
        self.line_length = config.line_length
        self.rings_per_player = config.rings_per_player
        self.victory_threshold = config.victory_threshold
        self.territory_minimum = config.territory_minimum
        self._stacks: list[tuple[int, ...]] = [()] * g.num_cells
        self._markers = [0] * g.num_cells
        self._collapsed = [0] * g.num_cells
        self._hand = [0] + [self.rings_per_player] * n
        self._elim = [0] * (n + 1)
        self._elim_colour = [0] * (n + 1)
        self._terr = [0] * (n + 1)
        self.current_player = 1
        self.phase = RING_PLACEMENT
        self.must_move = -1
        self.chain_pos = -1
        self.pending_line = False
        self.pending_region: tuple[int, ...] | None = None
        self.turn_changed = False
        self.turn_recovery = False
        self.swap_rule = False
        self.swap_offered = False
        self.swapped = False
        self.winner: int | None = None
        self.victory_reason: str | None = None
        self.move_count = 0
        self.turn_count = 0
        self.last_actor = 0
        self.elimination_turn = [_NEVER] * (n + 1)
        # Last player standing (R172): per candidate, how many of the latest completed turns
        # in a row were "good" for it; whether the current turn's player had a real action
        # at its start, and whether it took one.
        self.lps_streak = [0] * (n + 1)
        self.lps_had = True
        self.lps_took = False
        self._board_hash = 0
        self._mkeys, self._ckeys = _keys(g)

    @classmethod
    def initial(cls, config: GameConfig, *, swap_rule: bool = True) -> GameState:
        """The empty starting position; the pie rule applies to 2-player games when enabled."""
        s = cls(config)
        s.swap_rule = swap_rule and config.num_players == 2
        s._lps_turn_start()
        return s

    # ---- read accessors -------------------------------------------------------------
    def stack(self, cell: Cell) -> tuple[int, ...]:
        """Ring owners at `cell`, top ring first (empty tuple: no stack)."""
        return self._stacks[cell]

    def height(self, cell: Cell) -> int:
        return len(self._stacks[cell])

    def controller(self, cell: Cell) -> int:
        st = self._stacks[cell]
        return st[0] if st else 0

    def cap_height(self, cell: Cell) -> int:
        st = self._stacks[cell]
        return mg.cap_height(st) if st else 0

    def marker(self, cell: Cell) -> int:
        return self._markers[cell]

    def collapsed(self, cell: Cell) -> int:
        return self._collapsed[cell]

    def rings_in_hand(self, player: int) -> int:
        return self._hand[player]

    def eliminated_rings(self, player: int) -> int:
        """Rings eliminated with credit to `player` (R060)."""
        return self._elim[player]

    def territory(self, player: int) -> int:
        return self._terr[player]

    def rings_on_board(self, player: int) -> int:
        return mg.own_rings_on_board(self, player)

    @property
    def is_over(self) -> bool:
        return self.phase == GAME_OVER

    @property
    def total_eliminated(self) -> int:
        return sum(self._elim)

    def s_invariant(self) -> int:
        """S = markers + collapsed cells + eliminated rings (R191)."""
        return (
            sum(1 for m in self._markers if m)
            + sum(1 for c in self._collapsed if c)
            + self.total_eliminated
        )

    def is_permanently_eliminated(self, player: int) -> bool:
        return self._hand[player] == 0 and not any(player in st for st in self._stacks if st)

    # ---- copying and hashing --------------------------------------------------------
    def copy(self) -> GameState:
        s = GameState.__new__(GameState)
        for name in GameState.__slots__:
            setattr(s, name, getattr(self, name))
        for name in (
            "_stacks",
            "_markers",
            "_collapsed",
            "_hand",
            "_elim",
            "_elim_colour",
            "_terr",
            "elimination_turn",
            "lps_streak",
        ):
            setattr(s, name, list(getattr(self, name)))
        return s

    def _meta_hash(self) -> int:
        meta = (
            self.current_player, self.phase, self.must_move, self.chain_pos, self.pending_line,
            self.pending_region, self.turn_changed, self.swap_offered, self.swapped,
            tuple(self._hand), tuple(self._elim), tuple(self._terr),
        )  # fmt: skip
        return hash(meta) & _MASK

    @property
    def zobrist_hash(self) -> int:
        """Incrementally maintained board hash combined with the turn/phase metadata."""
        return self._board_hash ^ self._meta_hash()

    def board_hash_from_scratch(self) -> int:
        h = 0
        mk, ck = self._mkeys, self._ckeys
        for c in self.geometry.cells:
            h ^= _stack_key(c, self._stacks[c])
            if self._markers[c]:
                h ^= mk[c * 5 + self._markers[c]]
            if self._collapsed[c]:
                h ^= ck[c * 5 + self._collapsed[c]]
        return h

    def recompute_hash(self) -> int:
        """The hash recomputed from the whole position (equals `zobrist_hash`)."""
        return self.board_hash_from_scratch() ^ self._meta_hash()

    # ---- board mutation (keeps the hash in step) -------------------------------------
    def _set_stack(self, cell: int, st: tuple[int, ...]) -> None:
        self._board_hash ^= _stack_key(cell, self._stacks[cell]) ^ _stack_key(cell, st)
        self._stacks[cell] = st

    def _set_marker(self, cell: int, owner: int) -> None:
        old = self._markers[cell]
        if old:
            self._board_hash ^= self._mkeys[cell * 5 + old]
        if owner:
            self._board_hash ^= self._mkeys[cell * 5 + owner]
        self._markers[cell] = owner

    def _collapse(self, cell: int, owner: int) -> None:
        """Turn a cell into `owner`'s territory, clearing marker and stack first."""
        if self._markers[cell]:
            self._set_marker(cell, 0)
        self._board_hash ^= self._ckeys[cell * 5 + owner]
        self._collapsed[cell] = owner
        self._terr[owner] += 1

    def _set_collapsed_raw(self, cell: int, owner: int) -> None:
        """Loading only: mark a collapsed cell without touching territory counters."""
        self._board_hash ^= self._ckeys[cell * 5 + owner]
        self._collapsed[cell] = owner

    def _lps_turn_start_if_needed(self) -> None:
        """For a state loaded mid-game: a turn seen only after its start counts as having
        had a real action (it breaks every other player's streak; never wins one)."""
        if self.phase == RING_PLACEMENT:
            self._lps_turn_start()
        else:
            self.lps_had, self.lps_took = True, False

    def _eliminate(self, credit: int, rings: tuple[int, ...]) -> None:
        self._elim[credit] += len(rings)
        for r in rings:
            self._elim_colour[r] += 1

    # ---- legal moves ----------------------------------------------------------------
    def legal_moves(self) -> list[Move]:
        """Every legal move of the player to act, bookkeeping moves included (R074-R076)."""
        return _GENERATORS[self.phase](self, self.current_player)

    def is_legal(self, move: Move) -> bool:
        return move in self.legal_moves()

    def apply(self, move: Move) -> None:
        """Validate and apply `move`; raises IllegalMoveError quoting the move and the reason."""
        if self.phase == GAME_OVER:
            raise IllegalMoveError(f"illegal move {move.to_notation()!r}: the game is over")
        if move.player != self.current_player:
            raise IllegalMoveError(
                f"illegal move {move.to_notation()!r}: player {self.current_player} is to act"
            )
        if move not in self.legal_moves():
            raise IllegalMoveError(
                f"illegal move {move.to_notation()!r}: not among the legal moves of "
                f"player {self.current_player} in phase {self.phase}"
            )
        self.apply_unchecked(move)

    def apply_unchecked(self, move: Move) -> None:
        """Apply a move known to be legal (e.g. taken from `legal_moves`)."""
        P = self.current_player
        if self.swap_offered and P == 2:
            self.swap_offered = False
        elim_before = self._elim_colour[1:] if move.type in _ELIMINATING else None
        if move.type not in _NON_CHANGING:
            self.turn_changed = True
            self.last_actor = P
            if move.type in _REAL_ACTIONS:
                self.lps_took = True
        self.move_count += 1
        _APPLIERS[move.type](self, move)
        if self.phase != GAME_OVER:
            if elim_before is not None and elim_before != self._elim_colour[1:]:
                self._check_victory(full=True)
            elif move.type in _SCORING:
                self._check_victory(full=False)

    def play(self, move: Move) -> GameState:
        """Functional form: a copy with `move` applied (validated)."""
        s = self.copy()
        s.apply(move)
        return s

    # ---- phase machine --------------------------------------------------------------
    def _after_line_decision(self) -> None:
        if not self.pending_line and not find_lines(self, self.current_player):
            self._enter_territory()

    def _enter_territory(self) -> None:
        self.phase = TERRITORY_PROCESSING

    def _exit_territory(self) -> None:
        P = self.current_player
        if not self.turn_changed and any(st and st[0] == P for st in self._stacks):
            self.phase = FORCED_ELIMINATION_PHASE
        else:
            self._end_turn()

    def _end_turn(self) -> None:
        self.turn_count += 1
        self._check_victory(full=True)
        if self.phase == GAME_OVER:
            return
        n = self.num_players
        P = self.current_player
        rotation_changed = False
        for q in range(1, n + 1):
            if self.elimination_turn[q] == _NEVER and self.is_permanently_eliminated(q):
                self.elimination_turn[q] = self.turn_count
                rotation_changed = True
        self._lps_turn_end(rotation_changed)
        if self.phase == GAME_OVER:
            return
        nxt = P
        for i in range(1, n + 1):
            q = (P + i - 1) % n + 1
            if self.elimination_turn[q] == _NEVER:
                nxt = q
                break
        self.current_player = nxt
        self.phase = RING_PLACEMENT
        self.must_move = -1
        self.chain_pos = -1
        self.pending_line = False
        self.pending_region = None
        self.turn_changed = False
        self.turn_recovery = False
        self.swap_offered = (
            self.swap_rule and not self.swapped and self.turn_count == 1 and nxt == 2
        )
        self._lps_turn_start()

    def _lps_turn_start(self) -> None:
        self.lps_had = mg.has_real_action(self, self.current_player)
        self.lps_took = False

    def _lps_turn_end(self, rotation_changed: bool) -> None:
        """Last player standing (R172): P wins once three consecutive full rounds (contiguous
        cycles of turns in seat order, starting at any seat) have P take a real action on
        each of its turns while every other seat has none available at the start of its
        turns; declared at the end of the round's last turn. A change of the rotation
        (a permanent elimination) restarts the count."""
        streak = self.lps_streak
        if rotation_changed:
            streak[:] = [0] * len(streak)
            return
        P = self.current_player
        seats = 0
        for q in range(1, self.num_players + 1):
            if self.elimination_turn[q] != _NEVER:
                continue
            seats += 1
            good = self.lps_took if q == P else not self.lps_had
            streak[q] = streak[q] + 1 if good else 0
        for q in range(1, self.num_players + 1):
            if seats > 1 and streak[q] >= LPS_ROUNDS_REQUIRED * seats:
                self._finish(q, "last_player_standing")
                return

    def _finish(self, winner: int | None, reason: str) -> None:
        self.winner = winner
        self.victory_reason = reason
        self.phase = GAME_OVER

    def _check_victory(self, *, full: bool) -> None:
        from engine.victory import check_victory

        check_victory(self, full=full)

    # ---- results --------------------------------------------------------------------
    def ranking(self) -> list[int]:
        """Final rank per player (index 0 = player 1; 1 = best; ties share a rank)."""
        from engine.victory import ranking

        return ranking(self)

    # ---- interop --------------------------------------------------------------------
    def to_ringrift_json(self) -> dict[str, Any]:
        from engine.serialize import state_to_json

        return state_to_json(self)

    @classmethod
    def from_ringrift_json(cls, data: dict[str, Any]) -> GameState:
        from engine.serialize import state_from_json

        return state_from_json(data)

    def match_move(self, move: Move) -> Move:
        """The legal move a possibly partial move (e.g. read from RingRift JSON) stands for."""
        from engine.serialize import match_move

        return match_move(self, move)

    def __repr__(self) -> str:
        return (
            f"<GameState {self.config.name} move {self.move_count} player {self.current_player} "
            f"{self.phase}>"
        )


# ---- move generators per phase -------------------------------------------------------
def _gen_placement(s: GameState, P: int) -> list[Move]:
    moves = mg.placements(s, P) if s._hand[P] > 0 else []
    if s._hand[P] > 0 and _can_skip_placement(s, P):
        moves.append(Move(SKIP_PLACEMENT, P))
    if not moves:
        moves.append(Move(NO_PLACEMENT_ACTION, P))
    if s.swap_offered and P == 2:
        moves.append(Move(SWAP_SIDES, P))
    return moves


def _can_skip_placement(s: GameState, P: int) -> bool:
    for c in mg.controlled_cells(s, P):
        if mg.stack_has_action(s, c):
            return True
    return mg.recovery_eligible(s, P)


def _gen_movement(s: GameState, P: int) -> list[Move]:
    moves = mg.movement_moves(s, P)
    if not moves and s.must_move < 0 and mg.recovery_eligible(s, P):
        moves = mg.recovery_moves(s, P)
        moves.append(Move(SKIP_RECOVERY, P))
    if not moves:
        moves.append(Move(NO_MOVEMENT_ACTION, P))
    if s.swap_offered and P == 2:
        # Only reachable from imported states: in play P2's placement-phase move clears it.
        moves.append(Move(SWAP_SIDES, P))
    return moves


def _chain_origins(s: GameState, P: int) -> list[int]:
    # Imported legacy states may lack chainCapturePosition: then any controlled stack.
    return [s.chain_pos] if s.chain_pos >= 0 else mg.controlled_cells(s, P)


def _gen_capture(s: GameState, P: int) -> list[Move]:
    moves: list[Move] = []
    for c in _chain_origins(s, P):
        mg.stack_captures(s, P, c, moves)
    moves.append(Move(SKIP_CAPTURE, P))
    return moves


def _gen_chain(s: GameState, P: int) -> list[Move]:
    moves: list[Move] = []
    for c in _chain_origins(s, P):
        mg.stack_captures(s, P, c, moves, CONTINUE_CAPTURE)
    return moves


def _gen_line(s: GameState, P: int) -> list[Move]:
    if s.pending_line:
        return [Move(ELIMINATE_RINGS, P, None, c, mode="line") for c in mg.controlled_cells(s, P)]
    return line_moves(s, P) or [Move(NO_LINE_ACTION, P)]


def _gen_territory(s: GameState, P: int) -> list[Move]:
    if s.pending_region is not None:
        return _territory_payments(s, P, s.pending_region)
    moves = [
        Move(CHOOSE_TERRITORY_OPTION, P, None, region[0], None, 0, region)
        for region in _processable_regions(s, P)
    ]
    if moves:
        moves.append(Move(SKIP_TERRITORY, P))
        return moves
    return [Move(NO_TERRITORY_ACTION, P)]


def _territory_payments(s: GameState, P: int, region: tuple[int, ...]) -> list[Move]:
    inside = set(region)
    if s.turn_recovery:
        cells = [c for c in mg.buried_ring_stacks(s, P) if c not in inside]
        return [Move(ELIMINATE_RINGS, P, None, c, mode="recovery") for c in cells]
    cells = [c for c in mg.controlled_cells(s, P) if c not in inside]
    return [Move(ELIMINATE_RINGS, P, None, c, mode="territory") for c in cells]


def _processable_regions(s: GameState, P: int) -> list[tuple[int, ...]]:
    """Regions P may claim: P can pay for them from outside (R143)."""
    regions = find_regions(s)
    if not regions:
        return []
    payers = mg.buried_ring_stacks(s, P) if s.turn_recovery else mg.controlled_cells(s, P)
    out = []
    for region in regions:
        inside = set(region)
        if any(c not in inside for c in payers):
            out.append(region)
    return out


def _gen_forced(s: GameState, P: int) -> list[Move]:
    return [Move(FORCED_ELIMINATION, P, None, c) for c in mg.controlled_cells(s, P)]


def _gen_over(s: GameState, P: int) -> list[Move]:
    return []


_GENERATORS = {
    RING_PLACEMENT: _gen_placement,
    MOVEMENT: _gen_movement,
    CAPTURE: _gen_capture,
    CHAIN_CAPTURE: _gen_chain,
    LINE_PROCESSING: _gen_line,
    TERRITORY_PROCESSING: _gen_territory,
    FORCED_ELIMINATION_PHASE: _gen_forced,
    GAME_OVER: _gen_over,
}


# ---- appliers ------------------------------------------------------------------------
# An applier gets only moves of its type, which carry the cells that type needs (the
# generators and parsers build them so); cast() narrows `Cell | None` for mypy without a
# runtime check (hot path).
def _apply_place(s: GameState, m: Move) -> None:
    P, c = m.player, cast(Cell, m.to_cell)
    s._hand[P] -= m.count
    s._set_stack(c, (P,) * m.count + s._stacks[c])
    s.must_move = c
    s.phase = MOVEMENT


def _apply_to_movement(s: GameState, m: Move) -> None:
    s.phase = MOVEMENT


def _apply_swap(s: GameState, m: Move) -> None:
    s.swapped = True
    s.swap_offered = False


def _walk_path(s: GameState, P: int, path: tuple[int, ...]) -> None:
    """Flip opponent markers and collapse own markers passed over (R092)."""
    markers = s._markers
    for x in path:
        owner = markers[x]
        if owner == P:
            s._collapse(x, P)
        elif owner:
            s._set_marker(x, P)


def _land(s: GameState, P: int, cell: int, st: tuple[int, ...]) -> None:
    if s._markers[cell]:
        s._set_marker(cell, 0)
        s._eliminate(P, st[:1])
        st = st[1:]
    if st:
        s._set_stack(cell, st)


def _apply_move_stack(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    d, k = s.geometry.ray_pos[a][b]
    st = s._stacks[a]
    s._set_stack(a, ())
    s._set_marker(a, P)
    _walk_path(s, P, s.geometry.rays[a][d][: k - 1])
    _land(s, P, b, st)
    s.must_move = -1
    s.chain_pos = b
    if s._stacks[b] and mg.has_capture(s, P, b):
        s.phase = CAPTURE
    else:
        s.phase = LINE_PROCESSING


def _apply_capture(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    t = cast(Cell, m.capture_target)
    g = s.geometry
    d, kt = g.ray_pos[a][t]
    _, kb = g.ray_pos[a][b]
    ray = g.rays[a][d]
    st = s._stacks[a]
    s._set_stack(a, ())
    s._set_marker(a, P)
    _walk_path(s, P, ray[: kt - 1])
    _walk_path(s, P, ray[kt : kb - 1])
    target = s._stacks[t]
    s._set_stack(t, target[1:])
    _land(s, P, b, st + target[:1])
    s.must_move = -1
    s.chain_pos = b
    if s._stacks[b] and mg.has_capture(s, P, b):
        s.phase = CHAIN_CAPTURE
    else:
        s.phase = LINE_PROCESSING


def _apply_to_lines(s: GameState, m: Move) -> None:
    s.phase = LINE_PROCESSING


def _extract_buried(s: GameState, P: int, cell: int) -> None:
    """Remove P's bottommost ring from the stack at `cell` (R113)."""
    st = s._stacks[cell]
    i = len(st) - 1 - st[::-1].index(P)
    s._set_stack(cell, st[:i] + st[i + 1 :])
    s._eliminate(P, (P,))


def _apply_recovery(s: GameState, m: Move) -> None:
    P, a, b = m.player, cast(Cell, m.from_cell), cast(Cell, m.to_cell)
    s._set_marker(a, 0)
    if m.extraction is not None:
        _extract_buried(s, P, m.extraction)
    if m.mode == "stack_strike":
        st = s._stacks[b]
        s._eliminate(P, st[:1])
        s._set_stack(b, st[1:])
    else:
        s._set_marker(b, P)
        for c in m.collapse:
            s._collapse(c, P)
    s.turn_recovery = True
    s.phase = LINE_PROCESSING


def _apply_line(s: GameState, m: Move) -> None:
    P = m.player
    for c in m.collapse:
        s._collapse(c, P)
    if len(m.collapse) == len(m.cells) and any(st and st[0] == P for st in s._stacks):
        s.pending_line = True
    s._after_line_decision()


def _apply_eliminate(s: GameState, m: Move) -> None:
    P, c = m.player, cast(Cell, m.to_cell)
    st = s._stacks[c]
    if m.mode == "line":
        s._eliminate(P, st[:1])
        s._set_stack(c, st[1:])
        s.pending_line = False
        return
    if m.mode == "recovery":
        _extract_buried(s, P, c)
    else:
        cap = mg.cap_height(st)
        s._eliminate(P, st[:cap])
        s._set_stack(c, st[cap:])
    s.pending_region = None
    if not _processable_regions(s, P):
        s._exit_territory()


def _apply_no_line(s: GameState, m: Move) -> None:
    s._enter_territory()


def _apply_region(s: GameState, m: Move) -> None:
    P = m.player
    region = m.cells
    border = border_markers(s, region, find_regions(s).get(region, 0))
    for c in region:
        st = s._stacks[c]
        if st:
            s._eliminate(P, st)
            s._set_stack(c, ())
        s._collapse(c, P)
    for c in border:
        s._collapse(c, P)
    s.pending_region = region


def _apply_exit_territory(s: GameState, m: Move) -> None:
    s._exit_territory()


def _apply_forced(s: GameState, m: Move) -> None:
    c = cast(Cell, m.to_cell)
    st = s._stacks[c]
    cap = mg.cap_height(st)
    s._eliminate(m.player, st[:cap])
    s._set_stack(c, st[cap:])
    s._end_turn()


_APPLIERS = {
    PLACE_RING: _apply_place,
    SKIP_PLACEMENT: _apply_to_movement,
    NO_PLACEMENT_ACTION: _apply_to_movement,
    SWAP_SIDES: _apply_swap,
    MOVE_STACK: _apply_move_stack,
    OVERTAKING_CAPTURE: _apply_capture,
    CONTINUE_CAPTURE: _apply_capture,
    SKIP_CAPTURE: _apply_to_lines,
    RECOVERY_SLIDE: _apply_recovery,
    SKIP_RECOVERY: _apply_to_lines,
    NO_MOVEMENT_ACTION: _apply_to_lines,
    PROCESS_LINE: _apply_line,
    CHOOSE_LINE_OPTION: _apply_line,
    ELIMINATE_RINGS: _apply_eliminate,
    NO_LINE_ACTION: _apply_no_line,
    CHOOSE_TERRITORY_OPTION: _apply_region,
    SKIP_TERRITORY: _apply_exit_territory,
    NO_TERRITORY_ACTION: _apply_exit_territory,
    FORCED_ELIMINATION: _apply_forced,
}

_ELIMINATING = frozenset(
    {MOVE_STACK, OVERTAKING_CAPTURE, CONTINUE_CAPTURE, RECOVERY_SLIDE, ELIMINATE_RINGS,
     CHOOSE_TERRITORY_OPTION, FORCED_ELIMINATION}
)  # fmt: skip
_NON_CHANGING = BOOKKEEPING | VOLUNTARY_SKIPS | {SWAP_SIDES}
_REAL_ACTIONS = frozenset({PLACE_RING, MOVE_STACK, OVERTAKING_CAPTURE, CONTINUE_CAPTURE})
_SCORING = frozenset({PROCESS_LINE, CHOOSE_LINE_OPTION, CHOOSE_TERRITORY_OPTION})
