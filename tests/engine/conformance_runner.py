"""Runs RingRift's contract vectors and sequences against the engine, and dispatches every
case (parity fixtures: conformance_parity); shared by the tests."""

from __future__ import annotations

from typing import Any

from conformance_cases import (
    Case,
    Result,
    Step,
    accepted_but,
    auto_complete,
    conformance_dir,
    expect_invalid_state,
    load_cases,
    rejection,
)
from conformance_parity import round_trip_errors, run_parity_action, run_trace

from engine.conformance_exceptions import EXCEPTIONS
from engine.move import BOOKKEEPING, CONTINUE_CAPTURE, Move
from engine.phases import GAME_OVER
from engine.serialize import match_move, move_from_json, state_from_json, state_to_json
from engine.state import GameState, IllegalMoveError

__all__ = ["Case", "Result", "conformance_dir", "load_cases", "run_case"]


class SegmentRejected(IllegalMoveError):
    """A chain segment of `expectedChainSequence` that is not legal; `move` is that segment."""

    def __init__(self, message: str, move: Move) -> None:
        super().__init__(message)
        self.move = move


def resolve_chain(s: GameState, expected: list[dict[str, Any]] | None) -> list[Move]:
    """Play out a chain capture, following `expectedChainSequence` where one is given."""
    played: list[Move] = []
    g = s.geometry
    for step in (expected or [])[1:]:
        if s.phase != "chain_capture":
            break
        target = g.cell_of_position(step["captureTarget"])
        landing = g.cell_of_position(step["landing"])
        found = [m for m in s.legal_moves() if m.capture_target == target and m.to_cell == landing]
        if not found:
            segment = Move(CONTINUE_CAPTURE, s.current_player, s.chain_pos, landing, target)
            raise SegmentRejected(f"chain step {step!r} is not a legal segment", segment)
        s.apply(found[0])
        played.append(found[0])
    while s.phase == "chain_capture":
        move = min(s.legal_moves(), key=lambda m: g.distance(m.from_cell, m.to_cell))
        s.apply(move)
        played.append(move)
    return played


def check_assertions(
    before: GameState, s: GameState, s_before: int, assertions: dict[str, Any], chain: list[Move]
) -> list[str]:
    """Every assertion key a vector states, compared with our resulting state."""
    d = state_to_json(s)
    got: dict[str, Any] = {
        "gameStatus": d["gameStatus"],
        "markerCount": len(d["board"]["markers"]),
        "stackCount": len(d["board"]["stacks"]),
        "collapsedCount": len(d["board"]["collapsedSpaces"]),
        "currentPlayer": s.current_player,
        "currentPhase": s.phase,
        "sInvariantDelta": s.s_invariant() - s_before,
        "victoryWinner": s.winner,
        "victoryReason": s.victory_reason,
        "pendingDecisionType": _pending_decision(s),
    }
    for i, p in enumerate(d["players"], 1):
        got[f"player{i}EliminatedRings"] = p["eliminatedRings"]
        got[f"player{i}RingsInHand"] = p["ringsInHand"]
        got[f"player{i}TerritorySpaces"] = p["territorySpaces"]
    if chain:
        final = chain[-1].to_cell
        got["totalCapturesInChain"] = len(chain)
        got["finalStackHeight"] = s.height(final)
        got["finalStackController"] = s.controller(final)
        targets = {m.capture_target for m in chain}
        got["targetStacksRemaining"] = sum(1 for c in targets if s.height(c) and c != final)
        got["markersCreated"] = len(d["board"]["markers"]) - sum(
            1 for c in before.geometry.cells if before.marker(c)
        )
    extractions = s.total_eliminated - before.total_eliminated
    got["extractionCount"] = extractions
    got["noLineCollapse"] = sum(1 for c in s.geometry.cells if s.collapsed(c)) == sum(
        1 for c in before.geometry.cells if before.collapsed(c)
    )
    errors = []
    for key, want in assertions.items():
        if key not in got:
            errors.append(f"unknown assertion key {key!r}")
        elif got[key] != want:
            errors.append(f"{key}: expected {want!r}, got {got[key]!r}")
    return errors


def _pending_decision(s: GameState) -> str | None:
    if s.phase == "line_processing" and any(
        m.type in ("process_line", "choose_line_option") for m in s.legal_moves()
    ):
        return "select_line_to_process"
    if s.phase == "territory_processing" and any(
        m.type == "choose_territory_option" for m in s.legal_moves()
    ):
        return "select_territory_region"
    return None


_INTERMEDIATE = (
    "capture",
    "chain_capture",
    "line_processing",
    "territory_processing",
    "forced_elimination",
)


def status_of(s: GameState, player: int) -> str:
    """awaiting_decision: the same player still has a real (non-bookkeeping) decision."""
    if s.phase == GAME_OVER or s.current_player != player or s.phase not in _INTERMEDIATE:
        return "complete"
    if any(m.type not in BOOKKEEPING for m in s.legal_moves()):
        return "awaiting_decision"
    return "complete"


def run_contract_vector(v: dict[str, Any], state: GameState | None = None) -> Step:
    """Apply a contract vector (from `state` when chained, else from its stated input)."""
    exc = EXCEPTIONS.get(v["id"])
    expect = exc["expect"] if exc else None
    if exc is not None and expect == "invalid_state":
        return expect_invalid_state(v["input"]["state"], exc)
    s = state if state is not None else state_from_json(v["input"]["state"])
    before, s_before = s.copy(), s.s_invariant()
    expected = dict(v["expectedOutput"])
    assertions = dict(expected["assertions"])
    outcome = "vector"
    if isinstance(expect, dict):
        assertions.update(expect["assertions"])
        expected["status"] = expect.get("status", expected["status"])
        outcome = "spec_state"
    move = move_from_json(v["input"].get("move") or v["input"]["initialMove"], s.geometry)
    want_phase = assertions.get("currentPhase")
    chain: list[Move] = []
    try:
        move = match_move(s, move)
        s.apply(move)
        if s.phase == "chain_capture" and want_phase != "chain_capture":
            if expected["status"] != "awaiting_decision":
                chain = [move, *resolve_chain(s, v["input"].get("expectedChainSequence"))]
    except SegmentRejected as err:
        return rejection(exc, s, err.move, err)
    except IllegalMoveError as err:
        return rejection(exc, s, move, err)
    if exc is not None and expect == "rejected":
        return accepted_but(exc)
    if expected["status"] == "complete" and want_phase not in _INTERMEDIATE:
        auto_complete(s)
    errors = check_assertions(before, s, s_before, assertions, chain)
    errors += check_final_state(s, chain, expected.get("finalState"))
    if status_of(s, move.player) != expected["status"]:
        errors.append(f"status: expected {expected['status']!r}, got {status_of(s, move.player)!r}")
    return Step(errors, s, outcome)


def check_final_state(s: GameState, chain: list[Move], final: dict[str, Any] | None) -> list[str]:
    """`expectedOutput.finalState` of the chain vectors: where the chain ends, and every
    marker on the board afterwards."""
    if final is None:
        return []
    if not chain:
        return ["finalState given, but no chain capture was played"]
    g = s.geometry
    errors = []
    if chain[-1].to_cell != g.cell_of_position(final["finalStackPosition"]):
        errors.append(f"finalStackPosition: expected {final['finalStackPosition']}")
    want = {g.cell_of_position(p) for p in final["markerPositions"]}
    have = {c for c in g.cells if s.marker(c)}
    if want != have:
        errors.append(f"markerPositions: expected {sorted(want)}, got {sorted(have)}")
    return errors


def run_sequence(steps: list[dict[str, Any]], result: Result) -> None:
    """Chain a sequence's steps. After a step that did not assert the vector's own
    expectation (a spec exception, or a mismatch), our state is not the one the next vector
    chains from, so the next step runs from its own stated input state instead."""
    state: GameState | None = None
    broken = ""
    for v in steps:
        vid = v["id"]
        if state is not None:
            result.errors += [f"{vid}: {e}" for e in compare_states(state, v["input"]["state"])]
        elif broken:
            result.restarted[vid] = broken
        step = run_contract_vector(v, state)
        result.add(vid, step)
        conformed = step.outcome == "vector" and not step.errors
        state = step.state if conformed else None
        if not conformed:
            broken = f"after {vid} ({step.outcome}), run from its own stated input state"


def run_case(case: Case) -> Result:
    """Every vector/step of a case against the engine."""
    result = Result()
    d = case.data
    if case.kind == "contract":
        result.add(case.id, run_contract_vector(d))
    elif case.kind == "sequence":
        run_sequence(case.sequence, result)
    elif case.kind == "parity_state_only":
        result.add(case.id, Step(round_trip_errors(d["state"]), None, "vector"))
    elif case.kind == "parity_state_action":
        exc = EXCEPTIONS.get(case.id)
        result.add(case.id, run_parity_action(d["state"], d["move"], d["expected"], exc))
    else:
        run_trace(case, result)
    return result


def compare_states(s: GameState, d: dict[str, Any]) -> list[str]:
    """Board content and per-player counters of our state against a serialized one."""
    ours = state_to_json(s)
    theirs = state_to_json(state_from_json(d))
    errors = []
    for key in ("stacks", "markers", "collapsedSpaces"):
        if ours["board"][key] != theirs["board"][key]:
            errors.append(f"chained state differs in board.{key}")
    for a, b in zip(ours["players"], theirs["players"], strict=False):
        for key in ("ringsInHand", "eliminatedRings", "territorySpaces"):
            if a[key] != b[key]:
                errors.append(
                    f"chained state differs in player {a['playerNumber']} {key}: ours {a[key]}, vector {b[key]}"
                )
    return errors
