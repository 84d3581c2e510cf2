"""`ringloop export`: a model's checkpoint with its sidecar, and games as RingRift records that
`verify-record` reads back; against a real nats-server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch

from engine import GameConfig, GameState
from engine.encoding import network_spec
from engine.network import build_network, load_checkpoint, save_checkpoint
from events import GameCompleted, ModelPromoted, ModelRegistered, SeatAssignment
from handlers.models import put_checkpoint
from ops.app import App
from ops.cli import main
from ops.settings import Settings

CONFIG = "square8_2p"


def bus(settings: Settings) -> list[str]:
    return ["--nats", str(settings.nats.url), "--state-dir", str(settings.state_dir)]


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_export_model_writes_the_checkpoint_and_its_lineage(
    app: App, settings: Settings, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    spec = network_spec(GameConfig.parse(CONFIG), blocks=1, channels=8)
    for generation, (model_id, parent) in enumerate([("exp-m1", None), ("exp-m2", "exp-m1")], 1):
        torch.manual_seed(generation)
        buffer = io.BytesIO()
        save_checkpoint(build_network(spec), spec, buffer)
        artifact = await put_checkpoint(app.store, f"{CONFIG}/{model_id}.pt", buffer.getvalue())
        await app.store.append(ModelRegistered(config=CONFIG, model_id=model_id, artifact=artifact,
                                               parent_model_id=parent, generation=generation))  # fmt: skip
    await app.store.append(ModelPromoted(config=CONFIG, model_id="exp-m2", gate="test",
                                         statistic=1.0, threshold=0.5, reason="test"))  # fmt: skip
    out = tmp_path / "out" / "best.pt"
    assert (
        await cli("export", "model", "best", "--config", CONFIG, "--out", str(out), *bus(settings))
        == 0
    )
    sidecar = json.loads((tmp_path / "out" / "best.pt.json").read_text())
    data = out.read_bytes()
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() == sidecar["artifact"]["sha256"]
    assert sidecar["model_id"] == "exp-m2" and sidecar["lineage"] == ["exp-m2", "exp-m1"]
    assert sidecar["size"] == len(data) and sidecar["generation"] == 2
    network, loaded = load_checkpoint(data)
    assert loaded.config == CONFIG
    first = tmp_path / "m1.pt"
    assert (
        await cli(
            "export", "model", "exp-m1", "--config", CONFIG, "--out", str(first), *bus(settings)
        )
        == 0
    )
    assert json.loads((tmp_path / "m1.pt.json").read_text())["lineage"] == ["exp-m1"]
    capsys.readouterr()
    assert (
        await cli(
            "export", "model", "nope", "--config", CONFIG, "--out", str(first), *bus(settings)
        )
        == 1
    )
    assert (
        await cli(
            "export", "model", "best", "--config", "hex8_4p", "--out", str(first), *bus(settings)
        )
        == 1
    )
    assert (
        await cli(
            "export", "model", "exp-m1", "--config", "hex8_2p", "--out", str(first), *bus(settings)
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "no model 'nope'" in err and "hex8_4p has no current best model" in err
    assert "'exp-m1' is a square8_2p model, not hex8_2p" in err


def random_game(seed: int) -> GameCompleted:
    state = GameState.initial(GameConfig.parse(CONFIG))
    rng = random.Random(seed)
    moves = []
    while not state.is_over and len(moves) < 400:
        move = rng.choice(state.legal_moves())
        state.apply(move)
        moves.append(move.to_notation())
    ranking = state.ranking() if state.is_over else [1, 2]
    seats = [
        SeatAssignment(seat=1, participant_id="random"),
        SeatAssignment(seat=2, participant_id="random-b"),
    ]
    return GameCompleted(config=CONFIG, purpose="selfplay", game_id=f"exp-g{seed}", seats=seats,
                         winner=state.winner, ranking=ranking, moves=moves, seed=seed,
                         termination=state.victory_reason or "max_moves_draw")  # fmt: skip


async def test_export_games_as_records_that_verify_record_replays(
    app: App, settings: Settings, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    await app.store.append_many([random_game(seed) for seed in range(3)])
    out = tmp_path / "games.jsonl"
    assert await cli("export", "games", "--config", CONFIG, "--out", str(out), *bus(settings)) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert record["boardType"] == "square8" and record["gameId"] == "exp-g0"
    assert record["players"][1]["participantId"] == "random-b"
    capsys.readouterr()
    assert await cli("verify-record", str(out)) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"OK {out}: 3 record(s)"), printed
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = tmp_path / "none.jsonl"
    assert (
        await cli(
            "export",
            "games",
            "--config",
            CONFIG,
            "--from",
            later,
            "--out",
            str(empty),
            *bus(settings),
        )
        == 0
    )
    assert empty.read_text() == ""
    assert await cli("verify-record", str(empty)) == 1
    assert "no game records" in capsys.readouterr().out


async def test_play_takes_best_and_model_ids_and_saves_its_record(
    app: App, settings: Settings, capsys
) -> None:  # type: ignore[no-untyped-def]
    config = "square8_3p"
    spec = network_spec(GameConfig.parse(config), blocks=1, channels=8)
    buffer = io.BytesIO()
    save_checkpoint(build_network(spec), spec, buffer)
    artifact = await put_checkpoint(app.store, f"{config}/play-m.pt", buffer.getvalue())
    await app.store.append(ModelRegistered(config=config, model_id="play-m", artifact=artifact))
    argv = [
        "play",
        "--config",
        config,
        "--seed",
        "3",
        "--max-moves",
        "4",
        "--quiet",
        *bus(settings),
    ]
    assert await cli(*argv, "--players", "best,random,heuristic") == 2
    assert f"{config} has no current best" in capsys.readouterr().err
    await app.store.append(ModelPromoted(config=config, model_id="play-m", gate="test",
                                         statistic=1.0, threshold=0.5, reason="test"))  # fmt: skip
    assert await cli(*argv, "--players", "best,play-m,random") == 0
    printed = capsys.readouterr().out
    assert "seat 1: model play-m" in printed and "seat 2: model play-m" in printed
    saved = settings.state_dir / "records" / f"play-{config}-3.json"
    assert f"record written to {saved}" in printed
    record = json.loads(saved.read_text())
    assert [p["tier"] for p in record["players"]] == ["play-m", "play-m", "random"]
    assert len(record["moves"]) == 4
