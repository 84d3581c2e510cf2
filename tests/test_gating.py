"""A gate shared by two evaluator processes, one killed with SIGKILL mid-gate: the gate still
completes, and every game is counted exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import LOG_STREAM, EvaluationCompleted, MatchCompleted
from ops.app import App
from ops.server import EmbeddedServer
from ops.settings import Settings, load_settings
from projections.gating import gate
from tests.conftest import repo_root
from tests.play import candidate, gate_matches, stages_running

CONFIG = "square8_2p"
# Long enough a gate to kill an evaluator in the middle of it: 2 x 16 games, two per fetch,
# an SPRT strict enough not to stop early, and a short redelivery delay for the dead one's games.
LOOP_TOML = """[loop]
preset = "tiny"
[loop.evaluation]
baseline_games = 16
games_per_batch = 2
sprt = { elo0 = 0.0, elo1 = 1.0, alpha = 0.001, beta = 0.001 }
[loop.tasks]
ack_wait_s = 4.0
"""


@pytest.fixture(scope="module")
def settings(nats_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    (state / "settings.toml").write_text(LOOP_TOML)
    return load_settings(state / "settings.toml", state_dir=str(state), nats__url=nats_server.url)


@pytest.fixture()
def evaluators(settings: Settings, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    for index in range(2):
        state = tmp_path / f"evaluator-{index}"
        state.mkdir()
        (state / "settings.toml").write_text(LOOP_TOML)
        log = (state / "stderr.log").open("wb")
        command = [sys.executable, "-m", "ops", "run", "evaluator", "--nats",
                   str(settings.nats.url), "--state-dir", str(state)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(repo_root())}
        processes.append(
            subprocess.Popen(command, env=env, cwd=repo_root(), stdout=log, stderr=log)
        )
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


@pytest.mark.timeout(900)  # 32 model games on 2 cores, redeliveries after a kill
async def test_two_evaluators_share_a_gate_and_one_dies_mid_gate(
    app: App, evaluators: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    trained = await candidate(app, CONFIG)
    evaluation_id = f"eval-{trained.training_id}"
    async with stages_running(app, "gating"):
        await app.store.append(trained)

        async def both_played() -> list[MatchCompleted]:
            while True:
                matches = await gate_matches(app, CONFIG, evaluation_id)
                if {m.producer.pid for m in matches} >= {p.pid for p in evaluators}:
                    return matches
                await asyncio.sleep(0.1)

        try:
            before_kill = await asyncio.wait_for(both_played(), 120)
        except TimeoutError:
            logs = [
                (tmp_path / f"evaluator-{i}" / "stderr.log").read_text()[-2000:] for i in (0, 1)
            ]
            raise AssertionError(f"both evaluators never played: {logs}") from None
        assert await app.store.read_all(LOG_STREAM, f"loop.eval.completed.{CONFIG}") == []
        victim, survivor = evaluators
        victim.kill()  # SIGKILL mid-gate: its fetched games are neither acked nor nak'ed
        assert victim.wait(10) == -signal.SIGKILL

        async def decided() -> EvaluationCompleted:
            while True:
                found = await app.store.read_all(LOG_STREAM, f"loop.eval.completed.{CONFIG}")
                if found:
                    return found[0].event  # type: ignore[return-value]
                await asyncio.sleep(0.1)

        try:  # the survivor plays the rest, the victim's unacked items after their ack_wait
            summary = await asyncio.wait_for(decided(), 600)
        except TimeoutError:
            played = len(await gate_matches(app, CONFIG, evaluation_id))
            raise AssertionError(f"no decision after 600 s; {played} of 32 games played") from None
        await app.refresh("gating")
        row = gate(app.runners["gating"].state, evaluation_id)
    assert summary.evaluation_id == evaluation_id and not summary.decided_early
    assert len(await app.store.read_all(LOG_STREAM, f"loop.eval.completed.{CONFIG}")) == 1
    matches = await gate_matches(app, CONFIG, evaluation_id)
    ids = [m.match_id for m in matches]
    assert len(ids) == len(set(ids)) == 32  # every planned game once: none lost, none twice
    assert {m.producer.pid for m in matches} == {victim.pid, survivor.pid}
    assert {m.producer.pid for m in matches} >= {m.producer.pid for m in before_kill}
    assert [r.games for r in summary.results] == [16, 16]
    assert row is not None and row["counted"] == 32 and row["surplus"] == 0
