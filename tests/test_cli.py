"""The operator commands end to end, in-process, against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from events import EVENT_TYPES, DaemonHeartbeat, MatchCompleted
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.bus import BusConnectError
from ops.cli import main
from ops.server import EmbeddedServer
from ops.settings import NatsSettings, Settings


def cli(settings: Settings, *args: str) -> list[str]:
    return [*args, "--nats", str(settings.nats.url), "--state-dir", str(settings.state_dir)]


async def run_cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


@pytest.fixture(scope="module")
async def rated_matches(app: App) -> int:
    runtime = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    task = asyncio.create_task(runtime.run())
    runner = app.projection_runner("elo")
    for i in range(12):
        ranks = {"a": 1 + i % 2, "b": 2 - i % 2}
        participants = [{"participant_id": p, "rank": r} for p, r in ranks.items()]
        await app.store.append(
            MatchCompleted(config="square8_2p", match_id=f"cli-{i}", participants=participants)
        )
    await asyncio.wait_for(
        _until(
            lambda: (
                (runner.state.get("elo_config_state", "square8_2p") or {}).get("matches_rated")
                == 12
            ),
            app,
        ),
        20,
    )
    runtime.stop()
    await task
    return 12


async def _until(predicate, app: App) -> None:  # type: ignore[no-untyped-def]
    while True:
        await app.refresh("elo")
        if predicate():
            return
        await asyncio.sleep(0.05)


async def test_replay_rebuilds_to_a_file_and_to_a_point(
    app: App,
    settings: Settings,
    rated_matches: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "full.db"
    assert (
        await run_cli(cli(settings, "replay", "--projection", "elo", "--out", str(out), "--json"))
        == 0
    )
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [elo] = full["projections"]
    assert elo["rows"]["elo_matches"] == rated_matches and elo["rows"]["elo_ratings"] == 2
    early = tmp_path / "early.db"
    argv = cli(
        settings, "replay", "--projection", "elo", "--out", str(early), "--until-seq", "3", "--json"
    )
    assert await run_cli(argv) == 0
    [past] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["projections"]
    assert past["position"] == 3 and past["rows"]["elo_matches"] < rated_matches
    assert await run_cli(cli(settings, "replay", "--out", str(out))) == 2  # refuses to overwrite


async def test_replay_check_exit_codes(app: App, settings: Settings, rated_matches: int) -> None:
    await app.refresh("elo")
    assert await run_cli(cli(settings, "replay", "--check", "--projection", "elo")) == 0
    db = app.runners["elo"].db
    db.execute("update elo_ratings set games = games + 5 where participant = 'a'")
    db.conn.commit()
    try:
        assert await run_cli(cli(settings, "replay", "--check", "--projection", "elo")) == 1
    finally:
        db.execute("update elo_ratings set games = games - 5 where participant = 'a'")
        db.conn.commit()


async def test_status_and_tail(
    app: App, settings: Settings, rated_matches: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(cli(settings, "status", "--json")) == 0
    status = json.loads(capsys.readouterr().out)
    log_stream = next(s for s in status["streams"] if s["stream"] == "RINGLOOP_LOG")
    assert log_stream["messages"] >= 2 * rated_matches
    assert any(
        c["name"] == "elo-rater-match-completed" and c["lag"] == 0 for c in log_stream["consumers"]
    )
    assert any(p["projection"] == "elo" for p in status["projections"])
    argv = cli(settings, "tail", "loop.elo.>", "--all", "--count", "3")
    assert await run_cli(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("elo.updated" in line and "square8_2p" in line for line in lines)

    # live: tail says it follows once its start is fixed; an event appended after that is printed
    tail = asyncio.create_task(run_cli(cli(settings, "tail", "loop.system.>", "--count", "1")))
    out, err = "", ""

    async def following() -> None:
        nonlocal out, err
        while "ringloop tail: following 'loop.system.>'" not in err:
            assert not tail.done(), err
            captured = capsys.readouterr()
            out, err = out + captured.out, err + captured.err
            await asyncio.sleep(0.05)

    await asyncio.wait_for(following(), 60)
    await app.store.append(DaemonHeartbeat(daemon="tail-test"))
    assert await asyncio.wait_for(tail, 60) == 0
    [line] = (out + capsys.readouterr().out).strip().splitlines()
    assert "loop.system.heartbeat" in line and "daemon=tail-test" in line


def test_schema_command_writes_documents(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "asyncapi.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    assert len(list((tmp_path / "events").glob("*.schema.json"))) == len(EVENT_TYPES)


def test_bad_settings_fail_at_start_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "settings.toml"
    bad.write_text("[nats]\nreplicas = 0\n")
    assert main(["status", "--settings", str(bad)]) == 2
    assert "nats.replicas" in capsys.readouterr().err


async def test_run_refuses_without_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(["run", "elo-rater", "--state-dir", str(tmp_path)]) == 2
    assert "no NATS URL" in capsys.readouterr().err


async def test_user_and_password_are_passed_through(tmp_path: Path) -> None:
    """A server requiring user/password: the right ones connect, none are refused."""
    server = EmbeddedServer(tmp_path / "auth")
    config = (
        server._config_text() + 'authorization {\n  user: "ringloop"\n  password: "s3cret"\n}\n'
    )
    server._config_text = lambda: config  # type: ignore[method-assign]
    await asyncio.to_thread(server.start)
    try:
        good = Settings(
            state_dir=tmp_path / "s",
            nats=NatsSettings(url=server.url, user="ringloop", password="s3cret"),
        )
        app = await App.open(good, start_server=False)
        assert (await app.store.js.stream_info("RINGLOOP_LOG")).config.deny_delete
        await app.close()
        bad = Settings(state_dir=tmp_path / "s", nats=NatsSettings(url=server.url))
        with pytest.raises(BusConnectError, match="Authorization Violation"):
            await App.open(bad, start_server=False)
    finally:
        await server.astop()
