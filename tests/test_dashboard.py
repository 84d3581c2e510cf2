"""The dashboard against a real nats-server: its JSON reads, and the page in headless Chromium
(it loads, a live update appears after an event is appended, square and hex games replay).

The browser test drives Debian's /usr/bin/chromium through Playwright's Python client (its
own browser downloads are never used). With CI set, a missing chromium or playwright fails
instead of skipping. The screenshot is saved under the test's tmp dir and copied to
artifacts/dashboard.png (ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from events import GAMES_STREAM, ModelRejected
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from ops.watching import Watching, start_dashboard_alone
from ops.wiring import PROJECTIONS
from tests import loop_story as story
from tests.conftest import repo_root

CHROMIUM = Path(os.environ.get("RINGLOOP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = repo_root() / "artifacts"


def fetch(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read().decode(), error.code
    kind = "json" if body.startswith(("{", "[")) else "text"
    return status, json.loads(body) if kind == "json" else body


async def get(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(fetch, url)


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Two configs: the viewer replays a square and a hex board."""
    state = tmp_path_factory.mktemp("state")
    return load_settings(None, state_dir=str(state), nats__url=nats_server.url,
                         loop={"configs": [story.CONFIG, story.HEX_CONFIG]})  # fmt: skip


@pytest_asyncio.fixture(scope="module")
async def served(app: App) -> AsyncIterator[tuple[Watching, dict[str, int]]]:
    seqs = {}
    seqs["square"] = await app.store.append(story.random_game(story.CONFIG, seed=3))
    seqs["hex"] = await app.store.append(story.random_game(story.HEX_CONFIG, seed=4))
    await app.store.append_many([*story.training(), *story.rated_matches(), *story.verdict()])
    app.start_views(list(PROJECTIONS), ":memory:")
    for name in PROJECTIONS:
        await app.refresh(name)
    watching = await start_dashboard_alone(app)
    yield watching, seqs
    await watching.stop()


async def test_state_and_config_reads(served: tuple[Watching, dict[str, int]]) -> None:
    watching, _ = served
    url = watching.urls["dashboard"]
    status, state = await get(url + "api/state")
    assert status == 200
    row = state["configs"][0]
    assert (row["config"], row["generation"], row["best_model"]) == (story.CONFIG, 1, story.MODEL)
    assert row["best_elo"] == pytest.approx(1524.0) and row["samples_per_s"] == 321.5
    promoted = [t for t in state["timeline"] if t["kind"] == "promoted"]
    assert promoted and promoted[0]["reason"].endswith("never cut at 110 characters")
    status, config = await get(url + f"api/config/{story.CONFIG}")
    assert status == 200
    (model,) = config["ratings"]["models"]
    assert (
        model["elo"] == pytest.approx(1524.0) and model["ml_low"] < model["ml"] < model["ml_high"]
    )
    assert [e["policy"] for e in config["losses"][0]["epochs"]] == [2.7, 2.4]
    assert config["throughput"]["trainings"][0]["samples_per_s"] == 321.5


async def test_game_replay_reads(served: tuple[Watching, dict[str, int]]) -> None:
    watching, seqs = served
    url = watching.urls["dashboard"]
    for board, seq in seqs.items():
        status, game = await get(url + f"api/game/{seq}")
        assert status == 200 and game["error"] is None
        stored = await watching.app.store.get(GAMES_STREAM, seq)
        assert len(game["frames"]) == len(json.loads(stored.data)["moves"]) + 1
        assert game["layout"]["hex"] is (board == "hex")
        assert game["frames"][-1]["cells"], "pieces are on the board after the moves"


async def test_bad_requests_answer_one_line_errors(served: tuple[Watching, dict[str, int]]) -> None:
    url = served[0].urls["dashboard"]
    status, body = await get(url + "api/game/abc")
    assert status == 400 and body["error"] == "game sequence must be a positive integer, got 'abc'"
    status, body = await get(url + "api/game/999999")
    assert status == 404 and "999999" in body["error"]
    status, body = await get(url + "api/config/nonsense")
    assert status == 400 and "nonsense" in body["error"]
    status, body = await get(url + "api/explain/no-such-model")
    assert status == 404 and "no-such-model" in body["error"]


async def test_loop_metrics_on_the_dashboard_port(served: tuple[Watching, dict[str, int]]) -> None:
    status, text = await get(served[0].urls["dashboard"] + "metrics")
    assert status == 200
    assert f'ringloop_games_total{{config="{story.CONFIG}",purpose="selfplay"}} 1.0' in text
    assert f'ringloop_best_elo{{config="{story.CONFIG}"}} 1524.0' in text


def _browser_or_skip() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI requires the playwright Python package for the dashboard test")
        pytest.skip("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI requires chromium at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    return async_playwright


async def test_page_in_chromium(
    app: App, served: tuple[Watching, dict[str, int]], tmp_path: Path
) -> None:
    async_playwright = _browser_or_skip()
    watching, seqs = served
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 2000},
        )  # fmt: skip
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(watching.urls["dashboard"])
            # the page loads and goes live
            await page.wait_for_selector("#live.on")
            await page.wait_for_selector(f'#configs tr[data-config="{story.CONFIG}"]')
            await page.wait_for_selector('#timeline li[data-kind="promoted"]')
            await page.wait_for_selector(f'#models tr[data-model="{story.MODEL}"]')
            # a live update: an event appended now shows up without a reload
            rejected = ModelRejected(config=story.CONFIG, model_id="square8_2p-g2-live",
                                     gate="head_to_head", statistic=0.4, threshold=0.5,
                                     reason="live update reached the page")  # fmt: skip
            seq = await app.store.append(rejected)
            item = await page.wait_for_selector(f'#timeline li[data-seq="{seq}"]')
            assert "live update reached the page" in await item.inner_text()
            # a game replays move by move, on the square board and on the hex board
            await _replay(page, seqs["square"], board="square8")
            await page.click("#timeline li[data-kind='promoted'] button")
            await page.wait_for_function(
                "document.getElementById('explain-chain').children.length > 0"
            )
            await page.check("#timeline-all")  # every config's timeline, then the hex board
            await _replay(page, seqs["hex"], board="hex8")
            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(shot, ARTIFACTS / "dashboard.png")
            assert not errors, errors
        finally:
            await browser.close()


async def _replay(page: Any, seq: int, *, board: str) -> None:
    select = f"{story.HEX_CONFIG if board == 'hex8' else story.CONFIG}"
    await page.select_option("#config-select", select)
    await page.click(f'#games tr[data-seq="{seq}"]')
    await page.wait_for_function(f"document.getElementById('board').dataset.board === '{board}'")
    for _ in range(6):
        await page.click("#next")
    assert (await page.inner_text("#game-ply")).startswith("ply 6 /")
    assert await page.locator("#board-pieces circle").count() > 0
    await page.click("#last")
    text = await page.inner_text("#game-ply")
    assert text.split(" / ")[0] == "ply " + text.split(" / ")[1].split(" ")[0]


def test_dashboard_command_rejects_a_bad_port(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops.cli import main

    code = main(["dashboard", "--http-port", "70000", "--nats", str(settings.nats.url),
                 "--state-dir", str(settings.state_dir)])  # fmt: skip
    assert code == 2
    assert (
        capsys.readouterr().err.strip() == "ringloop: --http-port must lie in 0..65535, got 70000"
    )
