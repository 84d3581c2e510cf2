"""RingRift's EloService API on the log, against a real nats-server: writes are events, reads
come from the Elo projection; plus the `ringloop leaderboard` command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events import LOG_STREAM
from ops.app import App, ProjectorLock
from ops.cli import main
from ops.elo_service import (
    AsyncEloService,
    EloService,
    MatchRefused,
    close_elo_services,
    config_name,
    get_elo_service,
    id_config_conflict,
    init_elo_database,
    ranks_from_positions,
)
from ops.settings import Settings, load_settings


@pytest.fixture(scope="module")
async def service(app: App) -> AsyncIterator[AsyncEloService]:
    core = AsyncEloService(app, rater=True)
    yield core
    await core.close()


async def match_count(app: App) -> int:
    return len(await app.store.read_all(LOG_STREAM, "loop.match.completed.>"))


def test_config_names_and_ranks() -> None:
    assert config_name("square8", 2) == "square8_2p"
    assert config_name("HEXAGONAL", 4) == "hexagonal_4p"
    assert config_name(config="hex8_3p") == "hex8_3p"
    with pytest.raises(ValueError, match="unknown config 'triangle_2p'"):
        config_name("triangle", 2)
    assert ranks_from_positions([0, 1, 1, 3]) == [1, 2, 2, 4]
    assert ranks_from_positions([1, 0]) == [2, 1]
    assert id_config_conflict("ringrift_best_square8_4p", "square8_2p") is not None
    assert id_config_conflict("ringrift_best_square8_2p", "square8_2p") is None
    assert id_config_conflict("model_4p:gumbel_mcts:b800", "hex8_2p") is not None
    assert id_config_conflict("heuristic", "hex8_2p") is None


async def test_round_trip(service: AsyncEloService, tmp_path: Path) -> None:
    weights = tmp_path / "alpha.pt"
    weights.write_bytes(b"alpha weights")
    registered = await service.register_models(
        [
            {"model_id": "alpha", "model_path": str(weights), "board_type": "square8", "num_players": 2},
            {"model_id": "alpha-copy", "model_path": str(weights), "board_type": "square8", "num_players": 2},
            {"model_id": "beta", "board_type": "square8", "num_players": 2},
        ]
    )  # fmt: skip
    assert registered == 3

    first = await service.update_elo_after_match("alpha", "beta", "alpha", "square8", 2)
    assert first["model_a"] == 1516.0 and first["model_b"] == 1484.0
    assert first["changes"] == {"alpha": 16.0, "beta": -16.0}
    # the same weights under another name are the same participant
    second = await service.update_elo_after_match("alpha-copy", "beta", "draw", "square8", 2)
    assert second["model_a"] < 1516.0 and second["model_b"] > 1484.0

    match_id, four = await service.record_match_and_update(
        ["w", "x", "random", "heuristic"], [0, 1, 2, 3], "hex8", 4, "t1", game_id="game-4p"
    )
    assert four["random"] == 400.0 and four["heuristic"] == 1200.0
    assert four["w"] > 1500.0 > four["x"]
    # a game recorded twice (same game_id) is one match, rated once
    again = await service.record_match_and_update(
        ["w", "x", "random", "heuristic"], [0, 1, 2, 3], "hex8", 4, game_id=match_id
    )
    assert again == (match_id, four)

    [top, bottom] = await service.get_leaderboard("square8", 2)
    assert top["participant_id"] == "alpha" and top["games_played"] == 2
    assert top["rating"] == second["model_a"] and top["wins"] == 1 and top["draws"] == 1
    assert {"rank", "name", "ai_type", "win_rate", "losses", "last_active"} <= set(top)
    assert top["ai_type"] == "model" and bottom["participant_id"] == "beta"

    rows = await service.leaderboard("square8_2p")
    assert [r["participant"] for r in rows] == ["alpha", "beta"]
    assert all(r["ml_low"] < r["ml_rating"] < r["ml_high"] for r in rows)

    h2h = await service.get_head_to_head("alpha", "beta", "square8", 2)
    assert (h2h["total_games"], h2h["a_wins"], h2h["b_wins"], h2h["draws"]) == (2, 1, 0, 1)
    assert (await service.get_head_to_head("alpha-copy", "beta"))["total_games"] == 2

    history = await service.get_match_history(
        participant_id="beta", board_type="square8", num_players=2
    )
    assert [h["match_id"] for h in history] == [second["match_id"], first["match_id"]]
    assert history[1]["winner_id"] == "alpha" and history[1]["rankings"] == [0, 1]
    assert history[1]["elo_after"] == {"alpha": 1516.0, "beta": 1484.0}
    assert history[0]["winner_id"] is None
    [four_player] = await service.get_match_history(tournament_id="t1")
    assert four_player["match_id"] == match_id and four_player["num_players"] == 4

    ratings = await service.get_rating_history("beta", "square8", 2)
    assert [r["rating"] for r in ratings] == [second["model_b"], 1484.0]
    assert ratings[1]["rating_change"] == -16.0
    unrated = await service.get_rating("nobody", "square8", 2)
    assert unrated["rating"] == 1500.0 and unrated["games_played"] == 0


async def test_cross_config_updates_are_refused(app: App, service: AsyncEloService) -> None:
    await service.register_model("m2", "square8", 2)
    before = await match_count(app)
    with pytest.raises(MatchRefused, match="mixes configs.*m2"):
        await service.record_match_and_update(["m2", "p", "q", "r"], [0, 1, 2, 3], "square8", 4)
    with pytest.raises(MatchRefused, match="ringrift_best_square8_4p.*square8_4p participant"):
        await service.update_elo_after_match(
            "ringrift_best_square8_2p", "ringrift_best_square8_4p", None, "square8", 2
        )
    with pytest.raises(MatchRefused, match="winner 'zed'"):
        await service.update_elo_after_match("m2", "beta", "zed", "square8", 2)
    assert await match_count(app) == before


async def test_synchronous_facade(settings: Settings, service: AsyncEloService) -> None:
    def use() -> tuple[dict[str, object], list[dict[str, object]]]:
        with EloService(settings) as elo:
            result = elo.update_elo_after_match("sync-a", "sync-b", "model_b", board_type="hex8")
            return result, elo.get_leaderboard(config="hex8_2p")

    result, board = await asyncio.to_thread(use)
    assert result["model_b"] == 1516.0 and result["config"] == "hex8_2p"
    assert [row["participant_id"] for row in board] == ["sync-b", "sync-a"]

    def singleton() -> bool:
        try:
            return get_elo_service(settings) is init_elo_database(settings)
        finally:
            close_elo_services()

    assert await asyncio.to_thread(singleton)


async def test_leaderboard_command_json(
    service: AsyncEloService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = await service.leaderboard("square8_2p")
    args = ["leaderboard", "--config", "square8_2p", "--nats", str(settings.nats.url)]
    args += ["--state-dir", str(tmp_path)]
    assert await asyncio.to_thread(main, [*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["participant"] for r in rows] == ["alpha", "beta"]
    for row, want in zip(rows, expected, strict=True):
        for key in ("participant", "elo", "ml_rating", "ml_low", "ml_high", "games"):
            assert row[key] == want[key]
    assert (tmp_path / "projections.db").exists()  # the folder's read model was caught up

    assert await asyncio.to_thread(main, [*args, "--limit", "1"]) == 0
    text = capsys.readouterr().out
    assert "alpha" in text and "beta" not in text and "95% interval" in text
    assert await asyncio.to_thread(main, [*args[:2], "nope_2p", *args[3:]]) == 2


async def test_leaderboard_reads_a_copy_when_up_owns_the_folder(
    service: AsyncEloService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nats.url").write_text(str(settings.nats.url))  # as `ringloop up` leaves it
    lock = ProjectorLock(load_settings(None, state_dir=str(tmp_path)))
    assert lock.acquire()  # as `ringloop up` holds it
    args = ["leaderboard", "--config", "square8_2p", "--json", "--state-dir", str(tmp_path)]
    try:
        assert await asyncio.to_thread(main, args) == 0
    finally:
        lock.release()
    rows = json.loads(capsys.readouterr().out)
    assert [r["elo"] for r in rows] == [r["elo"] for r in await service.leaderboard("square8_2p")]
    assert not (tmp_path / "projections.db").exists()  # the owner's file is left alone
