"""`ringloop leaderboard`: sorted by the ML fit, the current best marked, Elo/ML disagreements
explained, and a lagging Elo read model said so; against a real nats-server."""

from __future__ import annotations

import asyncio
import json

import pytest

from events import MatchCompleted, ModelPromoted, ModelRegistered
from handlers.runtime import HandlerRuntime
from ops.app import App
from ops.cli import main
from ops.commands.leaderboard import DISAGREEMENT_ELO, disagreement, ranked, render
from ops.settings import Settings

CONFIG = "hex8_2p"


def row(name: str, elo: float, ml: float | None, low: float = 0, high: float = 0) -> dict:
    return {"participant": name, "key": name, "elo": elo, "ml_rating": ml, "ml_low": low,
            "ml_high": high, "games": 40, "wins": 1, "losses": 2, "draws": 0}  # fmt: skip


def test_rows_sort_by_ml_and_disagreements_are_explained() -> None:
    rows = [row("rejected", 1400, 900, 800, 1000), row("heuristic", 1200, 1200),
            row("best-m", 1300, 1250, 1150, 1350), row("unfitted", 1600, None)]  # fmt: skip
    out = ranked(rows, {"best-m": "best", "rejected": "rejected"})
    assert [r["participant"] for r in out] == ["best-m", "heuristic", "rejected", "unfitted"]
    assert out[0]["best"] and out[2]["registry"] == "rejected"
    assert out[0]["note"] is None  # within DISAGREEMENT_ELO
    assert "Elo 1400 vs ML 900" in out[2]["note"] and "trust the ML rating" in out[2]["note"]
    assert disagreement(row("x", 1000 + DISAGREEMENT_ELO, 1000)) is None
    text = render(CONFIG, out, lag=3)
    assert "* = current best" in text and "\n  1  *  best-m" in text
    assert "rejected: Elo 1400 vs ML 900" in text and "behind: 3 MatchCompleted" in text


async def _match(app: App, index: int) -> None:
    parts = [{"participant_id": "lb-m", "rank": 1}, {"participant_id": "random", "rank": 2}]
    await app.store.append(
        MatchCompleted(config=CONFIG, match_id=f"lb-{index}", participants=parts)
    )


async def test_the_command_marks_the_best_and_says_when_ratings_lag(
    app: App, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await app.store.append(ModelRegistered(config=CONFIG, model_id="lb-m"))
    await app.store.append(ModelPromoted(config=CONFIG, model_id="lb-m", gate="t",
                                         statistic=1, threshold=0.5, reason="t"))  # fmt: skip
    runtime = HandlerRuntime(app.handler_spec("elo-rater"), app.store)
    task = asyncio.create_task(runtime.run())
    for i in range(3):
        await _match(app, i)
    runner = app.projection_runner("elo")

    async def rated() -> None:
        while True:
            await app.refresh("elo")
            if (runner.state.get("elo_config_state", CONFIG) or {}).get("matches_rated") == 3:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(rated(), 30)
    runtime.stop()
    await task
    for i in range(3, 5):
        await _match(app, i)  # no elo-rater runs now: these stay unrated
    args = ["leaderboard", "--config", CONFIG, "--nats", str(settings.nats.url),
            "--state-dir", str(settings.state_dir)]  # fmt: skip
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "\n  1  *  lb-m" in out and "behind: 2 MatchCompleted" in out
    assert await asyncio.to_thread(main, [*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["participant"] == "lb-m" and rows[0]["best"] and rows[0]["registry"] == "best"
