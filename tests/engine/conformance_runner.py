"""Runs RingRift's published conformance vectors against the engine; shared by the tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.conformance_exceptions import EXCEPTIONS
from engine.move import BOOKKEEPING, NO_LINE_ACTION, NO_TERRITORY_ACTION, Move
from engine.state import GAME_OVER, GameState, IllegalMoveError


def conformance_dir() -> Path:
    env = os.environ.get("RINGLOOP_CONFORMANCE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


@dataclass
class Case:
    """One vector: an id, its file and the JSON."""

    id: str
    kind: str  # contract | parity_state_action | parity_trace | parity_state_only
    data: dict[str, Any]
    sequence: list[dict[str, Any]] = field(default_factory=list)


def load_cases(root: Path) -> list[Case]:
    cases: list[Case] = []
    sequences: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((root / "ringrift-contract-vectors-v2").glob("*.json")):
        for v in json.loads(path.read_text())["vectors"]:
            seq = next(
                (t.split(":", 1)[1] for t in v.get("tags", []) if t.startswith("sequence:")), None
            )
            if seq:
                sequences.setdefault(seq, []).append(v)
            else:
                cases.append(Case(v["id"], "contract", v))
    for name, steps in sorted(sequences.items()):
        steps.sort(key=lambda v: v["id"])
        cases.append(Case(f"sequence:{name}", "sequence", {}, steps))
    for path in sorted((root / "ringrift-rules-parity").glob("*/*.json")):
        data = json.loads(path.read_text())
        kind = "parity_" + path.name.split(".", 1)[0]
        cases.append(Case(f"{path.parent.name}/{path.stem}", kind, data))
    return cases


def s_value(d: dict[str, Any]) -> int:
    board = d["board"]
    elim = d.get("totalRingsEliminated")
    if elim is None:
        elim = sum(board.get("eliminatedRings", {}).values())
    return len(board.get("markers", {})) + len(board.get("collapsedSpaces", {})) + elim


def auto_complete(s: GameState) -> list[Move]:
    """Apply host bookkeeping (no_line_action / no_territory_action) until a turn boundary."""
    applied = []
    for _ in range(20):
        if s.phase not in ("line_processing", "territory_processing"):
            break
        moves = s.legal_moves()
        if len(moves) != 1 or moves[0].type not in (NO_LINE_ACTION, NO_TERRITORY_ACTION):
            break
        s.apply(moves[0])
        applied.append(moves[0])
    return applied


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
            raise IllegalMoveError(f"chain step {step!r} is not a legal segment")
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
    d = s.to_ringrift_json()
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


class Stop(Exception):
    """A spec exception held as expected: the vector's move was rejected; chaining ends."""


def _exception(vid: str) -> dict[str, Any] | None:
    return EXCEPTIONS.get(vid)


def run_contract_vector(
    v: dict[str, Any], state: GameState | None = None
) -> tuple[list[str], GameState | None]:
    """Apply a contract vector; returns (mismatches, resulting state). Raises Stop when a
    listed spec exception held (the move was rejected as the spec requires)."""
    exc = _exception(v["id"])
    expect = exc["expect"] if exc else None
    if expect == "invalid_state":
        try:
            GameState.from_ringrift_json(v["input"]["state"])
        except ValueError:
            raise Stop(v["id"]) from None
        return [f"expected the state to be rejected ({exc['rule']})"], None
    s = state if state is not None else GameState.from_ringrift_json(v["input"]["state"])
    before = s.copy()
    s_before = s.s_invariant()
    raw = v["input"].get("move") or v["input"]["initialMove"]
    expected = dict(v["expectedOutput"])
    assertions = dict(expected["assertions"])
    if isinstance(expect, dict):
        assertions.update(expect["assertions"])
        expected["status"] = expect.get("status", expected["status"])
    errors: list[str] = []
    try:
        move = s.match_move(Move.from_ringrift_json(raw, s.geometry))
        s.apply(move)
        chain: list[Move] = []
        want_phase = assertions.get("currentPhase")
        if (
            s.phase == "chain_capture"
            and want_phase != "chain_capture"
            and expected["status"] != "awaiting_decision"
        ):
            chain = [move, *resolve_chain(s, v["input"].get("expectedChainSequence"))]
    except IllegalMoveError as err:
        if expect == "rejected":
            raise Stop(v["id"]) from None
        return [f"move rejected: {err}"], None
    if expect == "rejected":
        return [f"expected rejection under {exc['rule']}, but the move was accepted"], None
    if expected["status"] == "complete" and want_phase not in _INTERMEDIATE:
        auto_complete(s)
    errors += check_assertions(before, s, s_before, assertions, chain)
    if status_of(s, move.player) != expected["status"] and not isinstance(expect, dict):
        errors.append(f"status: expected {expected['status']!r}, got {status_of(s, move.player)!r}")
    return errors, s


def fingerprint(s: GameState, meta_fields: int) -> str:
    """RingRift's state fingerprint string (RULES_DIGEST §25)."""
    g = s.geometry
    meta = [
        str(s.current_player),
        s.phase,
        "active" if not s.is_over else "completed",
        "1" if s.pending_line else "0",
    ]
    players = "|".join(
        f"{p}:{s.rings_in_hand(p)}:{s.eliminated_rings(p)}:{s.territory(p)}"
        for p in range(1, s.num_players + 1)
    )
    stacks = "|".join(
        sorted(
            f"{g.key(c)}:{s.controller(c)}:{s.height(c)}:{s.cap_height(c)}"
            for c in g.cells
            if s.height(c)
        )
    )
    markers = "|".join(sorted(f"{g.key(c)}:{s.marker(c)}" for c in g.cells if s.marker(c)))
    collapsed = "|".join(sorted(f"{g.key(c)}:{s.collapsed(c)}" for c in g.cells if s.collapsed(c)))
    return "#".join([":".join(meta[:meta_fields]), players, stacks, markers, collapsed])


def compare_fingerprint(s: GameState, expected: str) -> list[str]:
    meta, rest = expected.split("#", 1)
    fields = meta.split(":")
    ours = fingerprint(s, len(fields)).split("#", 1)
    errors = []
    if ours[0].split(":")[:2] != fields[:2]:
        errors.append(f"fingerprint meta: expected {meta!r}, got {ours[0]!r}")
    if ours[1] != rest:
        errors.append(f"fingerprint board: expected {rest!r}, got {ours[1]!r}")
    return errors


def run_parity_action(
    state_json: dict[str, Any],
    move_json: dict[str, Any],
    expected: dict[str, Any],
    expect: Any = None,
) -> tuple[list[str], GameState | None]:
    if expect == "invalid_state":
        try:
            GameState.from_ringrift_json(state_json)
        except ValueError:
            raise Stop("invalid state") from None
        return ["expected the state to be rejected"], None
    s = GameState.from_ringrift_json(state_json)
    try:
        move = s.match_move(Move.from_ringrift_json(move_json, s.geometry))
        s.apply(move)
        valid = True
    except IllegalMoveError as err:
        valid, reason = False, str(err)
    if expect == "rejected":
        if valid:
            return ["expected rejection under the spec exception, but the move was accepted"], None
        raise Stop("rejected")
    if valid != expected["tsValid"]:
        return [
            f"validity: expected {expected['tsValid']}, got {valid}"
            + ("" if valid else f" ({reason})")
        ], None
    if not valid:
        return [], None
    if (
        expected.get("tsNext", {}).get("currentPhase")
        not in ("line_processing", "territory_processing")
        or "tsNext" not in expected
    ):
        auto_complete(s)
    errors = []
    nxt = expected.get("tsNext")
    if nxt:
        got = {
            "boardType": s.geometry.board, "currentPhase": s.phase, "currentPlayer": s.current_player,
            "totalRingsEliminated": s.total_eliminated, "victoryThreshold": s.victory_threshold,
            "markers": sum(1 for c in s.geometry.cells if s.marker(c)),
            "collapsed": sum(1 for c in s.geometry.cells if s.collapsed(c)),
            "eliminated": s.total_eliminated,
            "S": s.s_invariant(),
        }  # fmt: skip
        for key, want in nxt.items():
            if key in got and got[key] != want:
                errors.append(f"tsNext.{key}: expected {want!r}, got {got[key]!r}")
        if nxt.get("gameStatus") == "completed" and not s.is_over:
            errors.append("tsNext.gameStatus: expected completed")
        if "stateHash" in nxt:
            errors += compare_fingerprint(s, nxt["stateHash"])
    if "tsStateHash" in expected:
        errors += compare_fingerprint(s, expected["tsStateHash"])
    if "tsS" in expected and s.s_invariant() != expected["tsS"]:
        errors.append(f"tsS: expected {expected['tsS']}, got {s.s_invariant()}")
    return errors, s


def run_case(case: Case) -> list[str]:
    """Mismatches between our engine and the case (empty when it conforms, or when a listed
    spec exception held)."""
    try:
        return _run_case(case)
    except Stop:
        return []


def _run_case(case: Case) -> list[str]:
    exc = _exception(case.id)
    expect = exc["expect"] if exc else None
    if case.kind == "contract":
        return run_contract_vector(case.data)[0]
    if case.kind == "sequence":
        return run_sequence(case.sequence)
    d = case.data
    if case.kind == "parity_state_only":
        s = GameState.from_ringrift_json(d["state"])
        return (
            [] if s.to_ringrift_json()["currentPhase"] == d["state"]["currentPhase"] else ["phase"]
        )
    if case.kind == "parity_state_action":
        return run_parity_action(d["state"], d["move"], d["expected"], expect)[0]
    errors: list[str] = []
    state_json = d["initialState"]
    for step in d["steps"]:
        errs, s = run_parity_action(state_json, step["move"], step["expected"], expect)
        errors += [f"{step.get('label')}: {e}" for e in errs]
        if s is None:
            break
        state_json = s.to_ringrift_json()
    return errors


def run_sequence(steps: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    state: GameState | None = None
    for v in steps:
        if state is not None:
            errors += [f"{v['id']}: {e}" for e in compare_states(state, v["input"]["state"])]
        try:
            errs, state = run_contract_vector(v, state)
        except Stop:
            break
        errors += [f"{v['id']}: {e}" for e in errs]
        if state is None:
            break
    return errors


def compare_states(s: GameState, d: dict[str, Any]) -> list[str]:
    """Board content and per-player counters of our state against a serialized one."""
    ours = s.to_ringrift_json()
    theirs = GameState.from_ringrift_json(d).to_ringrift_json()
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
