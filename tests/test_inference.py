"""The shared inference service (`ringloop inference`, ops.inference) and its client
(handlers.inference): real service processes, a real Unix socket, real torch, tiny networks."""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from engine import GameConfig, GameState
from handlers.inference import (
    InferenceClient,
    InferenceError,
    InferenceUnavailable,
    SharedEvaluator,
    inference_socket,
    selfplay_evaluator,
)
from handlers.settings import LoopSettings
from tests.conftest import repo_root

CONFIG = GameConfig.parse("square8_2p")
START_S = 180.0  # a service process starting on a loaded machine (imports torch)
PER_CLIENT = 3  # positions each client process sends per request
ROUNDS = 4


def tiny_checkpoint(state_dir: Path) -> str:
    """A seeded 1-block network's checkpoint in the state folder's cache; its sha256."""
    import torch

    from engine.encoding import network_spec
    from engine.network import build_network, save_checkpoint

    torch.manual_seed(3)
    spec = network_spec(CONFIG, blocks=1, channels=8)
    cache = state_dir / "cache" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    staged = cache / "staged.tmp"
    sha = save_checkpoint(build_network(spec), spec, staged)
    staged.replace(cache / f"{sha}.pt")
    return sha


def positions(seed: int, count: int) -> list[GameState]:
    rng, out = random.Random(seed), []
    while len(out) < count:
        state = GameState.initial(CONFIG)
        while not state.is_over and len(out) < count and state.move_count < 60:
            if rng.random() < 0.3:
                out.append(state.copy())
            state.apply_unchecked(rng.choice(state.legal_moves()))
    return out


def local_evaluator(state_dir: Path, sha: str) -> Any:
    from engine.network import load_checkpoint
    from engine.players.neural import NetworkEvaluator

    data = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
    return NetworkEvaluator(load_checkpoint(data, device="cpu")[0])


def start_service(state_dir: Path, socket_path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ops", "inference", "--state-dir", str(state_dir),
         "--socket", str(socket_path), "--device", "cpu"],
        cwd=repo_root(),
    )  # fmt: skip
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            InferenceClient(socket_path, timeout_s=30).close()
            return process
        except InferenceUnavailable:
            time.sleep(0.1)  # polling a condition: the socket answers
    process.kill()
    raise AssertionError(f"the inference service did not come up (exit {process.poll()})")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    state_dir = tmp_path_factory.mktemp("inference")
    # A batch waits (up to a minute) until every connected client has a request in: the
    # two-client test's batches then always hold both clients' requests.
    (state_dir / "settings.toml").write_text("[loop.selfplay]\ninference_wait_ms = 60000\n")
    return state_dir, tiny_checkpoint(state_dir)


@pytest.fixture(scope="module")
def service(state: tuple[Path, str]) -> Iterator[Path]:
    path = inference_socket(state[0])
    process = start_service(state[0], path)
    yield path
    stop(process)
    assert process.returncode == 0
    assert not path.exists()


def test_the_services_outputs_equal_a_local_evaluators(
    state: tuple[Path, str], service: Path
) -> None:
    state_dir, sha = state
    states = positions(1, 12)
    shared = SharedEvaluator(service, sha, timeout_s=120)
    try:
        priors, values = shared.evaluate(states)
    finally:
        shared.close()
    local_priors, local_values = local_evaluator(state_dir, sha).evaluate(states)
    assert np.allclose(values, local_values, atol=1e-5)
    for got, expected in zip(priors, local_priors, strict=True):
        assert np.allclose(got, expected, atol=1e-5)
    assert shared.positions_evaluated == 12 and shared.calls == 1
    assert shared.device.type == "cpu" and shared.seconds["network"] > 0


def test_a_model_unknown_to_the_service_is_refused_clearly(service: Path) -> None:
    unknown = "ab" * 32
    with pytest.raises(InferenceError, match=f"model '{unknown}' is unknown") as caught:
        SharedEvaluator(service, unknown, timeout_s=120)
    assert not isinstance(caught.value, InferenceUnavailable)


def _client(socket_path: Path, state_dir: Path, sha: str, seed: int, go: Any, results: Any) -> None:
    """A client process: connects, waits for the go, evaluates ROUNDS requests and reports
    the largest difference from a local evaluator of the same checkpoint."""
    import torch

    torch.set_num_threads(1)
    shared = SharedEvaluator(socket_path, sha, timeout_s=300)
    local = local_evaluator(state_dir, sha)
    go.wait(300)
    worst = 0.0
    for round_ in range(ROUNDS):
        states = positions(seed * 100 + round_, PER_CLIENT)
        priors, values = shared.evaluate(states)
        local_priors, local_values = local.evaluate(states)
        worst = max(worst, float(np.abs(values - local_values).max()))
        for got, expected in zip(priors, local_priors, strict=True):
            worst = max(worst, float(np.abs(got - expected).max()))
    shared.close()
    results.put((seed, worst, shared.calls, shared.positions_evaluated))


def test_two_client_processes_share_batches(state: tuple[Path, str], service: Path) -> None:
    state_dir, sha = state
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    clients = [
        context.Process(target=_client, args=(service, state_dir, sha, seed, go, results))
        for seed in (1, 2)
    ]
    for process in clients:
        process.start()
    watcher = InferenceClient(service, timeout_s=120)
    before = watcher.stats()
    deadline = time.monotonic() + START_S
    while watcher.stats()["clients"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a condition: both clients connected
    go.set()
    reports = sorted(results.get(timeout=300) for _ in clients)
    for process in clients:
        process.join(60)
    after = watcher.stats()
    watcher.close()
    assert [r[0] for r in reports] == [1, 2]
    assert all(worst < 1e-5 for _, worst, _, _ in reports), reports
    assert all(calls == ROUNDS and n == ROUNDS * PER_CLIENT for _, _, calls, n in reports)
    positions_served = after["positions"] - before["positions"]
    batches = after["batches"] - before["batches"]
    assert positions_served == 2 * ROUNDS * PER_CLIENT
    assert batches == ROUNDS  # every batch held both clients' requests: larger than either's
    assert positions_served / batches == 2 * PER_CLIENT > PER_CLIENT
    assert after["largest_batch"] >= 2 * PER_CLIENT


def test_a_client_whose_service_dies_gets_a_clear_error(
    state: tuple[Path, str], tmp_path: Path
) -> None:
    state_dir, sha = state
    path = tmp_path / "dying.sock"
    process = start_service(state_dir, path)
    shared = SharedEvaluator(path, sha, timeout_s=2)
    try:
        shared.evaluate(positions(3, 2))
        process.send_signal(signal.SIGSTOP)  # alive but silent: the client times out
        with pytest.raises(InferenceUnavailable, match="did not answer 'evaluate' within 2"):
            shared.evaluate(positions(4, 2))
        process.kill()
        process.wait(60)
        with pytest.raises(InferenceUnavailable, match="went away"):
            shared.forward(np.zeros((1, 1, 1, 1), dtype=np.float32))
    finally:
        shared.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(InferenceUnavailable, match=f"no inference service at {path}"):
        SharedEvaluator(path, sha, timeout_s=2)


def test_selfplay_falls_back_to_a_local_network_when_no_service_answers(
    state: tuple[Path, str], tmp_path: Path
) -> None:
    state_dir, sha = state
    loop = LoopSettings.profile("tiny", selfplay={"inference": "shared"})
    checkpoint = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
    with structlog.testing.capture_logs() as logs:
        evaluator = selfplay_evaluator(loop, sha, checkpoint, tmp_path / "none.sock")
    assert type(evaluator).__name__ == "NetworkEvaluator"
    assert [e["event"] for e in logs] == ["selfplay_inference_fallback"]
    assert "no inference service at" in logs[0]["reason"]


def test_selfplay_uses_the_service_when_the_setting_asks(
    state: tuple[Path, str], service: Path
) -> None:
    state_dir, sha = state
    checkpoint = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
    shared = selfplay_evaluator(
        LoopSettings.profile("tiny", selfplay={"inference": "shared"}), sha, checkpoint, service
    )
    local = selfplay_evaluator(
        LoopSettings.profile("tiny", selfplay={"inference": "local"}), sha, checkpoint, service
    )
    assert isinstance(shared, SharedEvaluator) and type(local).__name__ == "NetworkEvaluator"
    shared.close()


def test_a_bad_inference_setting_names_the_field() -> None:
    from handlers.settings import LoopSettingsError

    with pytest.raises(LoopSettingsError, match="selfplay.inference='gpu'"):
        LoopSettings.profile("tiny", selfplay={"inference": "gpu"})


def test_a_selfplay_child_process_plays_its_games_through_the_service(
    state: tuple[Path, str], service: Path
) -> None:
    import asyncio
    import hashlib

    from events import ArtifactRef, Producer
    from handlers.agents import search_settings
    from handlers.models import ModelRef
    from handlers.selfplay import ChildPlayer

    state_dir, sha = state
    checkpoint = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
    assert hashlib.sha256(checkpoint).hexdigest() == sha
    loop = LoopSettings.profile(
        "tiny", selfplay={"inference": "shared", "max_moves": 6, "simulations": 4}
    )
    artifact = ArtifactRef(bucket="ringloop-models", name="m", sha256=sha, size=len(checkpoint))
    model = ModelRef(CONFIG.name, "m", artifact, generation=1)
    watcher = InferenceClient(service, timeout_s=120)
    before = watcher.stats()["positions"]
    child = ChildPlayer()
    try:
        records = asyncio.run(
            child.play(CONFIG, loop, search_settings(loop, "selfplay"), 7,
                       Producer.current("t"), model, checkpoint, service)
        )  # fmt: skip
    finally:
        child.close()
    served = watcher.stats()["positions"] - before
    watcher.close()
    assert len(records) == loop.selfplay.games_per_task
    assert all(r.seats[0].model_sha256 == sha and r.visits for r in records)
    assert served > 0  # the child's leaves were evaluated by the service


def test_up_starts_the_service_only_when_shared_inference_is_asked(tmp_path: Path) -> None:
    import asyncio

    from ops.inference import start_for_loop
    from ops.settings import Settings

    local = Settings(state_dir=tmp_path, loop=LoopSettings.profile("tiny"))
    assert local.loop.selfplay.inference == "auto"
    if not __import__("torch").cuda.is_available():
        assert start_for_loop(local, ["--state-dir", str(tmp_path)]) is None
    shared = Settings(
        state_dir=tmp_path, loop=LoopSettings.profile("tiny", selfplay={"inference": "shared"})
    )
    process = start_for_loop(shared, ["--state-dir", str(tmp_path)])
    assert process is not None
    path = inference_socket(tmp_path)
    deadline = time.monotonic() + START_S
    while not path.exists() and process.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a condition: the service's socket appears
    InferenceClient(path, timeout_s=60).close()
    asyncio.run(process.stop())
    assert process.process.returncode == 0 and not path.exists()
    assert not list((tmp_path / "pids").glob("inference-*.json"))
