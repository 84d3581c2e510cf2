"""`ringloop verify-record` over game records generated here by random playouts."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.config import GameConfig
from engine.move import BOOKKEEPING, CHOOSE_TERRITORY_OPTION, PROCESS_LINE, Move
from engine.record import to_record
from engine.serialize import match_move, move_from_json, state_to_json
from engine.state import GameState
from ops.cli import main

CONFIGS = ("square8_2p", "hex8_2p", "square8_3p", "hex8_4p")


def _playout(name: str, seed: int, max_moves: int = 3000) -> tuple[GameConfig, list[Move]]:
    config = GameConfig.parse(name)
    rng = random.Random(seed)
    s = GameState.initial(config)
    moves = []
    while not s.is_over and len(moves) < max_moves:
        move = rng.choice(s.legal_moves())
        s.apply_unchecked(move)
        moves.append(move)
    return config, moves


_CACHE: dict[str, dict[str, Any]] = {}


def _record(name: str) -> dict[str, Any]:
    """A finished game's record (the first seed whose random playout ends)."""
    if name not in _CACHE:
        for seed in range(20):
            config, moves = _playout(name, seed)
            record = to_record(config, moves)
            if record["winner"] is not None:
                _CACHE[name] = record
                break
        else:
            raise AssertionError(f"no finished random game for {name}")
    return copy.deepcopy(_CACHE[name])


def _write(tmp_path: Path, name: str, record: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(record))
    return path


def _run(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[str]]:
    code = main(["verify-record", *map(str, paths)])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line.strip()]


def test_valid_records_pass_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [_write(tmp_path, name, _record(name)) for name in CONFIGS]
    code, lines = _run(capsys, *paths)
    assert code == 0, lines
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"OK {path}")
        assert "differs" not in line


def test_jsonl_file_of_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "games.jsonl"
    path.write_text("".join(json.dumps(_record(n)) + "\n" for n in ("square8_2p", "hex8_2p")))
    code, lines = _run(capsys, path)
    assert code == 0, lines
    assert lines == [lines[0]] and lines[0].startswith(f"OK {path}: 2 record(s)")


def test_spliced_illegal_move_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("square8_3p", "hex8_2p"):
        record = _record(name)
        g = GameConfig.parse(name)
        s = GameState.initial(g)
        # replay to a mid-game movement position and splice in a move of the wrong player
        moves = record["moves"]
        for i, data in enumerate(moves):
            m = move_from_json(data, s.geometry)
            if i > 10 and s.phase == "movement" and m.type not in BOOKKEEPING:
                break
            s.apply(match_move(s, m))
        wrong = s.current_player % g.num_players + 1
        bad = {"type": "place_ring", "player": wrong, "to": moves[i]["to"], "placementCount": 1}
        record["moves"] = [*moves[:i], bad, *moves[i:]]
        path = _write(tmp_path, name, record)
        code, lines = _run(capsys, path)
        assert code != 0
        assert len(lines) == 1 and lines[0].startswith(f"FAIL {path}")
        assert f"move {i + 1} ('place_ring') is illegal" in lines[0]


def test_wrong_winner_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = _record("hex8_4p")
    true_winner = record["winner"]
    record["winner"] = true_winner % 4 + 1
    path = _write(tmp_path, "wrong_winner", record)
    code, lines = _run(capsys, path)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith(f"FAIL {path}")
    assert f"winner {true_winner}" in lines[0]


def test_truncated_record_naming_a_winner_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record("square8_2p")
    record["moves"] = record["moves"][:-5]
    code, lines = _run(capsys, _write(tmp_path, "truncated", record))
    assert code != 0 and "not over" in lines[0]


def test_altered_summary_warns_but_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record("square8_3p")
    record["outcome"] = "territory_control" if record["outcome"] != "territory_control" else "x"
    record["finalScore"]["ringsEliminated"]["2"] += 7
    path = _write(tmp_path, "summary", record)
    code, lines = _run(capsys, path)
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith(f"OK {path}")
    assert "outcome" in lines[0] and "differs from ours" in lines[0]
    assert "finalScore.ringsEliminated[2]" in lines[0]


def _record_with(name: str, kind: str, size: int) -> tuple[dict[str, Any], int]:
    """A finished random game's record holding a `kind` move naming >= `size` cells, and
    that move's index."""
    for seed in range(200):
        config, moves = _playout(name, seed)
        for i, m in enumerate(moves):
            if m.type == kind and len(m.cells) >= size:
                record = to_record(config, moves)
                if record["winner"] is not None:
                    return json.loads(json.dumps(record)), i
    raise AssertionError(f"no random {name} game with a {kind} of {size} cells")


@pytest.mark.parametrize(
    ("name", "kind", "size"),
    [
        ("square8_2p", CHOOSE_TERRITORY_OPTION, 2),
        ("hex8_3p", CHOOSE_TERRITORY_OPTION, 2),
        ("square8_2p", PROCESS_LINE, 4),
    ],
)
@pytest.mark.parametrize("keep_cells", [True, False])
def test_a_region_or_line_is_named_by_any_of_its_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, kind: str, size: int,
    keep_cells: bool,
) -> None:  # fmt: skip
    record, i = _record_with(name, kind, size)
    data = record["moves"][i]
    cells_key = "disconnectedRegions" if kind == CHOOSE_TERRITORY_OPTION else "formedLines"
    positions = data[cells_key][0]["spaces" if kind == CHOOSE_TERRITORY_OPTION else "positions"]
    assert data["to"] == positions[0]
    data["to"] = positions[-1]  # another cell of the same region or line
    if not keep_cells:
        del data[cells_key]
        data.pop("collapsedMarkers", None)
    code, lines = _run(capsys, _write(tmp_path, "named", record))
    assert code == 0, lines


def _final_state(record: dict[str, Any]) -> dict[str, Any]:
    g = GameConfig(record["boardType"], record["numPlayers"])
    s = GameState.initial(g)
    for data in record["moves"]:
        s.apply(match_move(s, move_from_json(data, s.geometry)))
    return state_to_json(s)


def test_matching_final_position_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = _record("hex8_2p")
    record["finalState"] = _final_state(record)
    code, lines = _run(capsys, _write(tmp_path, "final", record))
    assert code == 0, lines


def test_final_position_that_differs_fails_naming_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record("square8_2p")
    final = _final_state(record)
    empty = next(f"{x},{y}" for x in range(8) for y in range(8) if f"{x},{y}" not in (
        final["board"]["stacks"].keys() | final["board"]["markers"].keys()
        | final["board"]["collapsedSpaces"].keys()
    ))  # fmt: skip
    final["board"]["markers"][empty] = {"player": 2}
    final["players"][0]["ringsInHand"] += 1
    record["finalState"] = final
    code, lines = _run(capsys, _write(tmp_path, "final", record))
    n = len(record["moves"])
    assert code != 0
    assert f"position differs after the last move (move {n})" in lines[0]
    assert f"marker {empty}: record 2, ours none" in lines[0]
    assert "ringsInHand[1]: record" in lines[0]


def test_position_after_a_move_names_the_first_move_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record("square8_3p")
    g = GameConfig(record["boardType"], record["numPlayers"])
    s = GameState.initial(g)
    for data in record["moves"][:40]:
        s.apply(match_move(s, move_from_json(data, s.geometry)))
        data["stateAfter"] = state_to_json(s)
    wrong = record["moves"][30]["stateAfter"]
    wrong["players"][2]["eliminatedRings"] += 1
    record["moves"][35]["stateAfter"]["board"]["collapsedSpaces"]["0,0"] = 1
    code, lines = _run(capsys, _write(tmp_path, "after", record))
    assert code != 0
    assert "position differs after move 31 (" in lines[0]
    assert "eliminatedRings[3]: record" in lines[0]
    assert "0,0" not in lines[0]


def test_python_snake_case_final_state_reads_stacks_bottom_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = _record("square8_2p")
    final = _final_state(record)
    board = final["board"]
    board["collapsed_spaces"] = board.pop("collapsedSpaces")
    for st in board["stacks"].values():
        st["rings"] = st["rings"][::-1]
        st["controlling_player"] = st.pop("controllingPlayer")
        st["stack_height"] = st.pop("stackHeight")
    final["players"] = [
        {"player_number": p["playerNumber"], "rings_in_hand": p["ringsInHand"],
         "eliminated_rings": p["eliminatedRings"]}
        for p in final["players"]
    ]  # fmt: skip
    record["final_state"] = final
    code, lines = _run(capsys, _write(tmp_path, "snake", record))
    assert code == 0, lines
