"""Loads RingRift's published conformance vectors and holds what every runner shares: the
case and result records and how a spec exception's expected rejection is checked."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance_reasons import GROUNDS

from engine.move import NO_LINE_ACTION, NO_TERRITORY_ACTION, Move
from engine.serialize import state_from_json
from engine.state import GameState


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
    parity = []
    for path in sorted((root / "ringrift-rules-parity").glob("*/*.json")):
        data = json.loads(path.read_text())
        kind = "parity_" + path.name.split(".", 1)[0]
        parity.append(Case(f"{path.parent.name}/{path.stem}", kind, data))
    _lend_validations(parity)
    return cases + parity


_MOVE_METADATA = ("id", "timestamp", "thinkTime", "moveNumber")


def _position_key(state: dict[str, Any], move: dict[str, Any]) -> str:
    return json.dumps([state, {k: v for k, v in move.items() if k not in _MOVE_METADATA}])


def _lend_validations(parity: list[Case]) -> None:
    """Trace steps state only `tsValid`; where a state_action fixture holds the same state and
    move, its `tsValidation` (the rejection code) is attached as `lentValidation`, so a
    rejected trace step is checked for that code too."""
    by_position = {
        _position_key(c.data["state"], c.data["move"]): (c.id, c.data["expected"]["tsValidation"])
        for c in parity
        if c.kind == "parity_state_action" and "tsValidation" in c.data["expected"]
    }
    for c in parity:
        if c.kind == "parity_trace" and len(c.data["steps"]) == 1:
            step = c.data["steps"][0]
            key = _position_key(c.data["initialState"], step["move"])
            if "tsValidation" not in step["expected"] and key in by_position:
                step["lentValidation"] = by_position[key]


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


@dataclass
class Step:
    """What one vector (or fixture step) asserted: mismatches, the state after it (None when
    nothing follows from it), and which expectation was asserted."""

    errors: list[str]
    state: GameState | None
    outcome: str  # vector | spec_state | spec_invalid_state | spec_rejected:<ground>


@dataclass
class Result:
    """A case's mismatches, the outcome of each vector/step id in it, and sequence steps that
    ran from their own stated input (chain broken) or did not run, each with the reason."""

    errors: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    restarted: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)

    def add(self, uid: str, step: Step) -> None:
        self.outcomes[uid] = step.outcome
        self.errors += [f"{uid}: {e}" for e in step.errors]


def expect_invalid_state(state_json: dict[str, Any], exc: dict[str, Any]) -> Step:
    """R001: loading must fail because the state names a cell that is not on the board."""
    try:
        state_from_json(state_json)
    except ValueError as err:
        if "is not a cell of" in str(err):
            return Step([], None, "spec_invalid_state")
        return Step(
            [f"state rejected, but not for an off-board cell: {err}"], None, "spec_invalid_state"
        )
    return Step([f"expected the state to be rejected ({exc['rule']})"], None, "spec_invalid_state")


def rejection(exc: dict[str, Any] | None, s: GameState, move: Move, err: Exception) -> Step:
    """The engine rejected `move` in `s`: conforming only if a spec exception names a ground
    and that ground holds in the position."""
    if exc is None or exc["expect"] != "rejected":
        return Step([f"move rejected: {err}"], None, "vector" if exc is None else "spec_state")
    ground = str(exc["because"])
    why = GROUNDS[ground](s, move)
    errors = [] if why is None else [f"rejected ({err}), but not because {ground}: {why}"]
    return Step(errors, None, f"spec_rejected:{ground}")


def accepted_but(exc: dict[str, Any]) -> Step:
    msg = f"expected rejection ({exc['because']}, {exc['rule']}), but the move was accepted"
    return Step([msg], None, f"spec_rejected:{exc['because']}")
