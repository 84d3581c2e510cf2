"""`ringloop verify-record` over game records generated here by random playouts."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.config import GameConfig
from engine.move import BOOKKEEPING, Move
from engine.record import to_record
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
            m = Move.from_ringrift_json(data, s.geometry)
            if i > 10 and s.phase == "movement" and m.type not in BOOKKEEPING:
                break
            s.apply(s.match_move(m))
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
    assert "finalScore.ringsEliminated" in lines[0]
