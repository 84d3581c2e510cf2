"""RingRift game-record JSON: replay a record move by move and write records from our games."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.config import GameConfig
from engine.move import BOOKKEEPING, Move
from engine.position import differences, position_from_json, position_of
from engine.serialize import match_move, move_from_json, move_to_json
from engine.state import GameState, IllegalMoveError


@dataclass
class ReplayResult:
    """Outcome of replaying one record."""

    moves_applied: int = 0
    error: str | None = None
    winner: int | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    state: GameState | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def config_of(record: dict[str, Any]) -> GameConfig:
    board = record.get("boardType") or record.get("board_type")
    players = (
        record.get("numPlayers") or record.get("num_players") or len(record.get("players") or ())
    )
    if not board or not players:
        raise ValueError(f"record lacks boardType/numPlayers: {sorted(record)!r}")
    return GameConfig(board, int(players))


def _apply_recorded(s: GameState, data: dict[str, Any], result: ReplayResult) -> None:
    """Apply one recorded move; RingRift hosts sometimes leave a forced bookkeeping move
    unrecorded, so a lone no_*_action is filled in (and reported as a warning) first."""
    move = move_from_json(data, s.geometry)
    for _ in range(4):
        try:
            s.apply(match_move(s, move))
            return
        except IllegalMoveError:
            legal = s.legal_moves()
            if len(legal) != 1 or legal[0].type not in BOOKKEEPING or s.is_over:
                raise
            result.warnings.append(
                f"inserted {legal[0].type} before move {result.moves_applied + 1}"
            )
            s.apply(legal[0])
    s.apply(match_move(s, move))


def _swap_rule(record: dict[str, Any]) -> bool:
    """rulesOptions.swapRuleEnabled; RingRift's self-play JSONL keeps it in its initial_state."""
    start = record.get("initial_state") or record.get("initialState") or {}
    if not isinstance(start, dict):
        start = {}
    board = start.get("board") or {}
    for key in ("stacks", "markers", "collapsed_spaces", "collapsedSpaces"):
        if board.get(key):
            raise ValueError(
                "record starts from a non-empty board; only the standard start is read"
            )
    for holder in (record, start):
        options = holder.get("rulesOptions") or holder.get("rules_options")
        if isinstance(options, dict) and "swapRuleEnabled" in options:
            return bool(options["swapRuleEnabled"])
    return True


def replay(record: dict[str, Any]) -> ReplayResult:
    """Replay every move; fail on an illegal move, on a position the record carries (after a
    move, or at the end) that differs from ours, or on a winner that disagrees with ours."""
    result = ReplayResult()
    config = config_of(record)
    swap = _swap_rule(record)
    s = GameState.initial(config, swap_rule=swap)
    result.state = s
    moves = record.get("moves") or ()
    for i, data in enumerate(moves):
        if s.is_over:
            result.error = f"move {i + 1} ({data.get('type')!r}) recorded after the game ended"
            return result
        try:
            _apply_recorded(s, data, result)
        except (IllegalMoveError, ValueError, KeyError) as err:
            result.error = f"move {i + 1} ({data.get('type')!r}) is illegal: {err}"
            return result
        result.moves_applied += 1
        after = data.get("stateAfter") or data.get("state_after")
        if isinstance(after, dict) and _position_differs(after, s, f"move {i + 1}", data, result):
            return result
    final = record.get("finalState") or record.get("final_state")
    last = moves[-1] if moves else {}
    if isinstance(final, dict) and _position_differs(
        final, s, f"the last move (move {len(moves)})", last, result
    ):
        return result
    result.winner, result.reason = s.winner, s.victory_reason
    _compare_summary(record, s, result)
    return result


def _position_differs(
    theirs: dict[str, Any], s: GameState, where: str, move: dict[str, Any], result: ReplayResult
) -> bool:
    """Set the result's error when the recorded position differs from ours."""
    g = s.geometry
    try:
        recorded = position_from_json(theirs, g, s.num_players)
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        result.error = f"position recorded after {where} cannot be read: {err!r}"
        return True
    found = differences(recorded, position_of(s), g)
    if found:
        shown = found if len(found) < 6 else [*found[:5], f"... {len(found) - 5} more"]
        result.error = f"position differs after {where} ({move.get('type')!r}): {'; '.join(shown)}"
    return bool(found)


def _compare_summary(record: dict[str, Any], s: GameState, result: ReplayResult) -> None:
    winner = record.get("winner")
    if winner is not None:
        if not s.is_over:
            result.error = (
                f"record names winner {winner} but the game is not over after its last move"
            )
        elif s.winner != int(winner):
            result.error = f"record names winner {winner}, our game ends with winner {s.winner}"
    outcome = record.get("outcome")
    if outcome is not None and isinstance(outcome, str) and outcome != s.victory_reason:
        result.warnings.append(f"outcome {outcome!r} differs from ours {s.victory_reason!r}")
    final = record.get("finalScore")
    if isinstance(final, dict):
        ours = final_score(s)
        for key, value in final.items():
            if key not in ours:
                continue
            if not isinstance(value, dict):
                result.warnings.append(f"finalScore.{key} {value!r} is not a table by player")
                continue
            for seat, count in value.items():
                mine = ours[key].get(str(seat))
                if mine != count:
                    result.warnings.append(
                        f"finalScore.{key}[{seat}] {count!r} differs from ours {mine!r}"
                    )


def final_score(s: GameState) -> dict[str, Any]:
    n = s.num_players
    return {
        "ringsEliminated": {str(p): s.eliminated_rings(p) for p in range(1, n + 1)},
        "territorySpaces": {str(p): s.territory(p) for p in range(1, n + 1)},
        "ringsRemaining": {
            str(p): s.rings_in_hand(p) + s.rings_on_board(p) for p in range(1, n + 1)
        },
    }


def to_record(config: GameConfig, moves: list[Move], *, swap_rule: bool = True) -> dict[str, Any]:
    """A RingRift game record of `moves` played from the initial position (validated)."""
    s = GameState.initial(config, swap_rule=swap_rule)
    out = []
    for move in moves:
        s.apply(move)
        out.append(move_to_json(move, s.geometry))
    return {
        "boardType": config.board,
        "numPlayers": config.num_players,
        "rulesOptions": {"swapRuleEnabled": swap_rule},
        "players": [{"playerNumber": p} for p in range(1, config.num_players + 1)],
        "winner": s.winner,
        "outcome": s.victory_reason,
        "finalScore": final_score(s),
        "moves": out,
    }
