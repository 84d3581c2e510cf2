"""GameState: the RingRift position, its legal moves and the phase machine that applies them."""

from __future__ import annotations

import random

from engine import movegen as mg
from engine.config import GameConfig
from engine.effects import APPLIERS as _APPLIERS
from engine.geometry import Cell, Geometry, geometry
from engine.legal import GENERATORS as _GENERATORS
from engine.lines import find_lines
from engine.move import (
    BOOKKEEPING,
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    CONTINUE_CAPTURE,
    ELIMINATE_RINGS,
    FORCED_ELIMINATION,
    MOVE_STACK,
    OVERTAKING_CAPTURE,
    PLACE_RING,
    PROCESS_LINE,
    RECOVERY_SLIDE,
    SWAP_SIDES,
    VOLUNTARY_SKIPS,
    Move,
)
from engine.phases import (
    FORCED_ELIMINATION_PHASE,
    GAME_OVER,
    RING_PLACEMENT,
    TERRITORY_PROCESSING,
)
from engine.victory import check_victory, ranking

LPS_ROUNDS_REQUIRED = 3
_MASK = (1 << 64) - 1
_NEVER = 1 << 30
_new_state = object.__new__


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
        """An independent copy (the per-cell and per-player lists copied, the rest shared:
        immutable values). Every slot assigned by name: the search copies a state per leaf."""
        s = _new_state(GameState)
        s.config = self.config
        s.geometry = self.geometry
        s.num_players = self.num_players
        s.line_length = self.line_length
        s.rings_per_player = self.rings_per_player
        s.victory_threshold = self.victory_threshold
        s.territory_minimum = self.territory_minimum
        s._stacks = self._stacks.copy()
        s._markers = self._markers.copy()
        s._collapsed = self._collapsed.copy()
        s._hand = self._hand.copy()
        s._elim = self._elim.copy()
        s._elim_colour = self._elim_colour.copy()
        s._terr = self._terr.copy()
        s.current_player = self.current_player
        s.phase = self.phase
        s.must_move = self.must_move
        s.chain_pos = self.chain_pos
        s.pending_line = self.pending_line
        s.pending_region = self.pending_region
        s.turn_changed = self.turn_changed
        s.turn_recovery = self.turn_recovery
        s.swap_rule = self.swap_rule
        s.swap_offered = self.swap_offered
        s.swapped = self.swapped
        s.winner = self.winner
        s.victory_reason = self.victory_reason
        s.move_count = self.move_count
        s.turn_count = self.turn_count
        s.last_actor = self.last_actor
        s.elimination_turn = self.elimination_turn.copy()
        s.lps_streak = self.lps_streak.copy()
        s.lps_had = self.lps_had
        s.lps_took = self.lps_took
        s._board_hash = self._board_hash
        s._mkeys = self._mkeys
        s._ckeys = self._ckeys
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
        check_victory(self, full=full)

    # ---- results --------------------------------------------------------------------
    def ranking(self) -> list[int]:
        """Final rank per player (index 0 = player 1; 1 = best; ties share a rank)."""
        return ranking(self)

    def __repr__(self) -> str:
        return (
            f"<GameState {self.config.name} move {self.move_count} player {self.current_player} "
            f"{self.phase}>"
        )


_ELIMINATING = frozenset(
    {MOVE_STACK, OVERTAKING_CAPTURE, CONTINUE_CAPTURE, RECOVERY_SLIDE, ELIMINATE_RINGS,
     CHOOSE_TERRITORY_OPTION, FORCED_ELIMINATION}
)  # fmt: skip
_NON_CHANGING = BOOKKEEPING | VOLUNTARY_SKIPS | {SWAP_SIDES}
_REAL_ACTIONS = frozenset({PLACE_RING, MOVE_STACK, OVERTAKING_CAPTURE, CONTINUE_CAPTURE})
_SCORING = frozenset({PROCESS_LINE, CHOOSE_LINE_OPTION, CHOOSE_TERRITORY_OPTION})
