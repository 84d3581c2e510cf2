"""RingRift JSON interop: serialized GameState and Move objects (stacks list the top ring first)."""

from __future__ import annotations

from typing import Any

from engine import movegen as mg
from engine.config import GameConfig
from engine.geometry import Geometry, geometry
from engine.move import (
    BOOKKEEPING,
    CHOOSE_LINE_OPTION,
    CHOOSE_TERRITORY_OPTION,
    LEGACY_ALIASES,
    MOVE_TYPES,
    PLACE_RING,
    PROCESS_LINE,
    Move,
)
from engine.phases import GAME_OVER
from engine.state import GameState, IllegalMoveError

_NO_TARGET = {"x": 0, "y": 0}
_LATE_PHASES = ("capture", "chain_capture", "line_processing", "territory_processing")


def _cells(g: Geometry, positions: list[dict] | None) -> tuple[int, ...]:
    return tuple(g.cell_of_position(p) for p in positions or ())


def _cell(g: Geometry, pos: dict | None) -> int | None:
    return None if pos is None else g.cell_of_position(pos)


def move_from_json(d: dict[str, Any], g: Geometry) -> Move:
    """Read a RingRift move; fields it leaves out stay unset (see `match_move`)."""
    kind = LEGACY_ALIASES.get(d.get("type", ""), d.get("type", ""))
    if kind not in MOVE_TYPES:
        raise ValueError(f"unknown move type in {d!r}")
    lines = d.get("formedLines") or []
    cells = _cells(g, lines[0]["positions"]) if lines else ()
    regions = d.get("disconnectedRegions") or []
    if kind == CHOOSE_TERRITORY_OPTION and regions:
        cells = tuple(sorted(_cells(g, regions[0]["spaces"])))
    collapse = _cells(g, d.get("collapsedMarkers") or d.get("collapsePositions"))
    option = int(d.get("recoveryOption") or d.get("option") or d.get("lineRewardOption") or 0)
    if kind == CHOOSE_LINE_OPTION and not option and cells and collapse:
        option = 1 if len(collapse) >= len(cells) else 2
    extraction = d.get("extractionStacks") or []
    uses_to = kind not in BOOKKEEPING and kind not in (
        "skip_placement",
        "skip_capture",
        "skip_recovery",
        "skip_territory_processing",
        "swap_sides",
    )
    return Move(
        type=kind,
        player=int(d["player"]),
        # RingRift's GPU self-play export repeats a placement's target as its `from`
        from_cell=None if kind == PLACE_RING else _cell(g, d.get("from")),
        to_cell=_cell(g, d.get("to")) if uses_to else None,
        capture_target=_cell(g, d.get("captureTarget")),
        count=int(d.get("placementCount") or 1) if kind == PLACE_RING else 0,
        cells=cells,
        collapse=collapse,
        option=option,
        mode=d.get("recoveryMode") or d.get("eliminationContext") or "",
        extraction=g.cell_of_key(extraction[0]) if extraction else None,
    )


def move_to_json(m: Move, g: Geometry) -> dict[str, Any]:
    """Write a RingRift move object."""
    d: dict[str, Any] = {"type": m.type, "player": m.player}
    d["to"] = g.position(m.to_cell) if m.to_cell is not None else dict(_NO_TARGET)
    if m.from_cell is not None:
        d["from"] = g.position(m.from_cell)
    if m.capture_target is not None:
        d["captureTarget"] = g.position(m.capture_target)
    if m.type == PLACE_RING:
        d["placementCount"] = m.count
    if m.type in (PROCESS_LINE, CHOOSE_LINE_OPTION) or (m.type == "recovery_slide" and m.cells):
        positions = [g.position(c) for c in m.cells]
        d["formedLines"] = [{"positions": positions, "player": m.player, "length": len(m.cells)}]
        d["collapsedMarkers"] = [g.position(c) for c in m.collapse]
    if m.type == CHOOSE_TERRITORY_OPTION:
        spaces = [g.position(c) for c in m.cells]
        d["disconnectedRegions"] = [
            {"spaces": spaces, "controllingPlayer": m.player, "isDisconnected": True}
        ]
    if m.option:
        d["option"] = m.option
    if m.type == "recovery_slide":
        d["recoveryMode"] = m.mode
        d["collapsePositions"] = [g.position(c) for c in m.collapse]
        if m.option:
            d["recoveryOption"] = m.option
    elif m.mode:
        d["eliminationContext"] = m.mode
    if m.extraction is not None:
        d["extractionStacks"] = [g.key(m.extraction)]
    return d


def _compatible(legal: Move, m: Move) -> bool:
    if legal.player != m.player:
        return False
    if legal.type != m.type and not (legal.type == PROCESS_LINE and m.type == CHOOSE_LINE_OPTION):
        return False
    for name in ("from_cell", "capture_target", "extraction"):
        value = getattr(m, name)
        if value is not None and value != getattr(legal, name):
            return False
    if m.count and m.count != legal.count:
        return False
    if m.option and legal.option and m.option != legal.option:
        return False
    if m.mode and legal.mode and m.mode != legal.mode:
        return False
    if m.cells and set(m.cells) != set(legal.cells):
        return False
    if m.collapse and set(m.collapse) != set(legal.collapse):
        return False
    if m.to_cell is not None and m.to_cell != legal.to_cell:
        # A line or region is named by any of its cells (RingRift's hosts pick any one).
        return legal.type in _CHOOSES_CELLS and m.to_cell in legal.cells
    return True


_CHOOSES_CELLS = frozenset({PROCESS_LINE, CHOOSE_LINE_OPTION, CHOOSE_TERRITORY_OPTION})


def match_move(s: GameState, m: Move) -> Move:
    """The unique legal move a (possibly partial) move stands for; raises IllegalMoveError."""
    legal = s.legal_moves()
    if m in legal:
        return m
    found = [c for c in legal if _compatible(c, m)]
    # where a lone cell names two lines through it, the line it is the representative of
    found.sort(key=lambda c: c.to_cell != m.to_cell)
    if not found:
        raise IllegalMoveError(
            f"illegal move {m.to_notation()!r}: no legal move of player {s.current_player} "
            f"in phase {s.phase} matches it"
        )
    return found[0]


def _stack_json(g: Geometry, cell: int, st: tuple[int, ...]) -> dict[str, Any]:
    return {
        "position": g.position(cell),
        "rings": list(st),
        "stackHeight": len(st),
        "capHeight": mg.cap_height(st),
        "controllingPlayer": st[0],
    }


def state_to_json(s: GameState) -> dict[str, Any]:
    """Serialize to RingRift's GameState JSON (contract-vector shape)."""
    g = s.geometry
    n = s.num_players
    board = {
        "type": g.board,
        "size": g.size,
        "stacks": {g.key(c): _stack_json(g, c, st) for c, st in enumerate(s._stacks) if st},
        "markers": {
            g.key(c): {"position": g.position(c), "player": m, "type": "regular"}
            for c, m in enumerate(s._markers)
            if m
        },
        "collapsedSpaces": {g.key(c): o for c, o in enumerate(s._collapsed) if o},
        "eliminatedRings": {str(p): s._elim[p] for p in range(1, n + 1)},
        "formedLines": [],
    }
    players = [
        {
            "playerNumber": p,
            "ringsInHand": s._hand[p],
            "eliminatedRings": s._elim[p],
            "territorySpaces": s._terr[p],
            "isActive": not s.is_permanently_eliminated(p),
        }
        for p in range(1, n + 1)
    ]
    d: dict[str, Any] = {
        "boardType": g.board,
        "board": board,
        "players": players,
        "currentPlayer": s.current_player,
        "currentPhase": s.phase,
        "gameStatus": "completed" if s.is_over else "active",
        "turnNumber": s.turn_count + 1,
        "moveHistory": [],
        "victoryThreshold": s.victory_threshold,
        "territoryVictoryThreshold": g.num_cells // 2 + 1,
        "territoryVictoryMinimum": s.territory_minimum,
        "totalRingsEliminated": s.total_eliminated,
        "totalRingsInPlay": s.rings_per_player * n,
        "pendingLineRewardElimination": s.pending_line,
        "rulesOptions": {"swapRuleEnabled": s.swap_rule},
        "winner": s.winner,
    }
    if s.victory_reason:
        d["victoryReason"] = s.victory_reason
    if s.chain_pos >= 0 and s.phase in ("capture", "chain_capture"):
        d["chainCapturePosition"] = g.position(s.chain_pos)
    if s.must_move >= 0:
        d["mustMoveFromStackKey"] = g.key(s.must_move)
    if s.pending_region is not None:
        d["pendingTerritoryRegion"] = [g.position(c) for c in s.pending_region]
    # Our turn bookkeeping, so a state resumes exactly (RingRift ignores unknown keys).
    d["ringloop"] = {
        "turnChanged": s.turn_changed,
        "turnRecovery": s.turn_recovery,
        "swapOffered": s.swap_offered,
        "swapped": s.swapped,
        "moveCount": s.move_count,
        "lastActor": s.last_actor,
        "lpsStreak": s.lps_streak[1:],
        "lpsHad": s.lps_had,
        "lpsTook": s.lps_took,
        "eliminationTurn": s.elimination_turn[1:],
    }
    return d


def state_from_json(d: dict[str, Any]) -> GameState:
    """Parse RingRift's GameState JSON, tolerating the legacy shapes found in its fixtures."""
    board = d["board"]
    board_type = board.get("type") or d.get("boardType")
    g = geometry(board_type)
    players = sorted(d["players"], key=lambda p: p["playerNumber"])
    n = max(2, len(players), d.get("maxPlayers") or 0)
    n = min(n, 4)
    s = GameState(GameConfig(g.board, n))  # g.board is board_type, validated
    by_seat = {p["playerNumber"]: p for p in players}
    for p in range(1, n + 1):
        info = by_seat.get(p, {})
        s._hand[p] = int(info.get("ringsInHand", 0))
        s._elim[p] = int(info.get("eliminatedRings", 0))
        s._terr[p] = int(info.get("territorySpaces", 0))
    for key, st in board.get("stacks", {}).items():
        s._set_stack(g.cell_of_key(key), tuple(int(r) for r in st["rings"]))
    for key, mk in board.get("markers", {}).items():
        s._set_marker(g.cell_of_key(key), int(mk["player"]))
    for key, owner in board.get("collapsedSpaces", {}).items():
        s._set_collapsed_raw(g.cell_of_key(key), int(owner))
    for p in range(1, n + 1):
        s._elim_colour[p] = max(0, s.rings_per_player - s._hand[p] - mg.own_rings_on_board(s, p))
    s.victory_threshold = int(d.get("victoryThreshold") or s.victory_threshold)
    minimum = d.get("territoryVictoryMinimum") or d.get("territoryVictoryThreshold")
    s.territory_minimum = int(minimum or s.territory_minimum)
    s.current_player = int(d.get("currentPlayer", 1))
    s.phase = d.get("currentPhase", "ring_placement")
    chain = d.get("chainCapturePosition")
    if chain is not None:
        s.chain_pos = g.cell_of_position(chain)
    must = d.get("mustMoveFromStackKey")
    if must:
        s.must_move = g.cell_of_key(must)
    s.pending_line = bool(d.get("pendingLineRewardElimination", False))
    s.turn_changed = s.phase in _LATE_PHASES
    s.swap_rule = bool((d.get("rulesOptions") or {}).get("swapRuleEnabled", True)) and n == 2
    history = d.get("moveHistory") or []
    s.move_count = len(history)
    s.turn_count = max(0, int(d.get("turnNumber") or 1) - 1)
    s.swap_offered = s.swap_rule and s.current_player == 2 and _p2_not_moved(history)
    pending = d.get("pendingTerritoryRegion")
    if pending is not None:
        s.pending_region = tuple(sorted(g.cell_of_position(p) for p in pending))
    ours = d.get("ringloop")
    if ours:
        _restore_turn(s, ours)
    if d.get("gameStatus") in ("completed", "finished") or s.phase == GAME_OVER:
        s.phase = GAME_OVER
        s.winner = d.get("winner")
        s.victory_reason = d.get("victoryReason")
    if not ours:
        s._lps_turn_start_if_needed()
    return s


def _restore_turn(s: GameState, ours: dict[str, Any]) -> None:
    s.turn_changed = bool(ours["turnChanged"])
    s.turn_recovery = bool(ours["turnRecovery"])
    s.swap_offered = bool(ours["swapOffered"])
    s.swapped = bool(ours["swapped"])
    s.move_count = int(ours["moveCount"])
    s.last_actor = int(ours["lastActor"])
    streak = ours.get("lpsStreak")  # absent in states saved before R172 rounds were canonical
    if streak is not None and len(streak) == s.num_players:
        s.lps_streak = [0, *(int(v) for v in streak)]
        s.lps_had, s.lps_took = bool(ours["lpsHad"]), bool(ours["lpsTook"])
    else:
        s._lps_turn_start_if_needed()
    s.elimination_turn = [s.elimination_turn[0], *(int(t) for t in ours["eliminationTurn"])]


def _p2_not_moved(history: list[dict]) -> bool:
    return bool(history) and all(m.get("player") != 2 for m in history)
