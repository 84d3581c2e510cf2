"""`ringloop up` serves the dashboard and /metrics, and `ringloop run` its handlers' /metrics,
as real processes: the URLs are printed and written, the pages answer, Ctrl-C cleans up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def ringloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "ops", *args]


def wait_for(
    condition: object, process: subprocess.Popen[bytes], what: str, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, f"the process exited before {what}"
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.1)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


@pytest.fixture
def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_up_serves_the_dashboard_and_metrics_and_run_its_metrics(
    tmp_path: Path, env: dict[str, str]
) -> None:
    state, log = tmp_path / "state", tmp_path / "up.log"
    up = subprocess.Popen(
        ringloop("up", "--profile", "tiny", "--handlers", "coordinator", "--state-dir", str(state),
                 "--progress-every", "0"),
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    run_log = tmp_path / "run.log"
    run = None
    try:
        dashboard, metrics = state / "dashboard.url", state / "metrics.url"
        wait_for(lambda: dashboard.exists() and metrics.exists(), up, "the URL files")
        # the files are written just before the lines are printed: wait for both lines
        wait_for(lambda: "ringloop up: metrics " in log.read_text(), up, "the printed URLs")
        printed = log.read_text()
        assert f"ringloop up: dashboard {dashboard.read_text()}" in printed
        assert f"ringloop up: metrics {metrics.read_text()}" in printed
        assert "<title>ringloop</title>" in get(dashboard.read_text())
        state_json = json.loads(get(dashboard.read_text() + "api/state"))
        assert state_json["configs"][0]["config"] == "square8_2p"
        # the loop lease shows once the bus monitor has read the KV bucket
        wait_for(lambda: 'ringloop_leases_held{kind="loop"} 1.0' in get(metrics.read_text()),
                 up, "the loop lease in /metrics")  # fmt: skip
        assert 'ringloop_games_total{config="square8_2p",purpose="selfplay"} 0.0' in get(
            metrics.read_text()
        )
        run = subprocess.Popen(ringloop("run", "elo-rater", "--state-dir", str(state)),
                               stdout=run_log.open("wb"), stderr=subprocess.STDOUT, env=env)  # fmt: skip
        found: list[str] = []

        def printed_url() -> bool:
            found[:] = re.findall(r"ringloop run elo-rater: metrics (\S+)", run_log.read_text())
            return bool(found)

        wait_for(printed_url, run, "the run process's metrics URL")
        assert "# HELP ringloop_handler_seconds" in get(found[0])
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0, run_log.read_text()[-2000:]
        # `ringloop dashboard` alone, against the same bus, from another state folder
        url = (state / "nats.url").read_text()
        alone_log = tmp_path / "dashboard.log"
        run = subprocess.Popen(
            ringloop("dashboard", "--nats", url, "--state-dir", str(tmp_path / "elsewhere")),
            stdout=alone_log.open("wb"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

        def dashboard_url() -> bool:
            found[:] = re.findall(r"ringloop dashboard: dashboard (\S+)", alone_log.read_text())
            return bool(found)

        wait_for(dashboard_url, run, "the dashboard's URL")
        assert json.loads(get(found[0] + "api/state"))["configs"][0]["config"] == "square8_2p"
        assert "ringloop_games_total" in get(found[0] + "metrics")
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0, alone_log.read_text()[-2000:]
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert not dashboard.exists() and not metrics.exists()
    finally:
        for process in (run, up):
            if process is not None and process.poll() is None:
                process.kill()
