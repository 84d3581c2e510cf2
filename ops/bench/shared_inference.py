"""`ringloop bench selfplay --inference shared --workers N`: N selfplay processes through one
`ringloop inference` service against N processes each holding its own network."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.config import GameConfig

START_S = 300.0  # the service process starting (imports torch) on a loaded machine


def compare(
    config: GameConfig, loop: Any, device: Any, network: Any, workers: int, games: int, seed: int
) -> dict[str, Any]:
    """positions/s of ``workers`` processes with local networks, then through one service."""
    from engine.network import save_checkpoint
    from handlers.inference import InferenceClient, InferenceUnavailable

    with tempfile.TemporaryDirectory(prefix="ringloop-bench-") as folder:
        state_dir = Path(folder)
        cache = state_dir / "cache" / "models"
        cache.mkdir(parents=True)
        staged = cache / "staged.tmp"
        sha = save_checkpoint(network.cpu(), network.spec, staged)
        staged.replace(cache / f"{sha}.pt")
        network.to(device)
        local = _run_workers(config, loop, str(device), state_dir, sha, None, workers, games, seed)
        path = state_dir / "inference.sock"
        service = subprocess.Popen([sys.executable, "-m", "ops", "inference", "--state-dir",
                                    str(state_dir), "--socket", str(path), "--device", str(device)])  # fmt: skip
        try:
            deadline = time.monotonic() + START_S
            while True:
                try:
                    InferenceClient(path, timeout_s=60).close()
                    break
                except InferenceUnavailable:
                    if service.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            shared = _run_workers(
                config, loop, str(device), state_dir, sha, path, workers, games, seed
            )
            stats_client = InferenceClient(path, timeout_s=60)
            stats = stats_client.stats()
            stats_client.close()
        finally:
            service.terminate()
            service.wait(60)
    return {
        "workers": workers,
        "local_workers_evals_per_s": round(local, 1),
        "shared_evals_per_s": round(shared, 1),
        "shared_ratio": round(shared / local, 3),
        "service_avg_batch": stats["avg_batch"],
        "service_batches": stats["batches"],
    }


def _run_workers(config: GameConfig, loop: Any, device: str, state_dir: Path, sha: str,
                 socket_path: Path | None, workers: int, games: int, seed: int) -> float:  # fmt: skip
    """Total positions/s of ``workers`` selfplay processes playing ``games`` games each."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(config.name, loop, device, state_dir, sha, socket_path, games, seed + k, results),
        )  # fmt: skip
        for k in range(workers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    evals = sum(results.get(timeout=3600) for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(60)
    return evals / elapsed


def _worker(config_name: str, loop: Any, device: str, state_dir: Path, sha: str,
            socket_path: Path | None, games: int, seed: int, results: Any) -> None:  # fmt: skip
    import torch

    from engine.network import load_checkpoint
    from engine.players.neural import NetworkEvaluator
    from handlers.agents import model_agent, search_settings
    from handlers.games import play_games
    from handlers.inference import SharedEvaluator

    torch.set_num_threads(1)
    config = GameConfig.parse(config_name)
    if socket_path is None:
        data = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
        evaluator: Any = NetworkEvaluator(load_checkpoint(data, device=device)[0])
    else:
        evaluator = SharedEvaluator(socket_path, sha, timeout_s=loop.selfplay.inference_timeout_s)
    agent = model_agent("bench", evaluator, search_settings(loop, "selfplay"), sha256=sha,
                        noise=True)  # fmt: skip
    seeds = [seed * 1_000_003 + i for i in range(games)]
    play_games(config, [[agent] * config.num_players] * games, seeds,
               max_moves=loop.selfplay.max_moves, adjudication=loop.selfplay.adjudication,
               parallel=loop.selfplay.parallel_for(torch.device(device).type),
               pipeline=loop.selfplay.pipeline_interval_s())  # fmt: skip
    results.put(evaluator.positions_evaluated)
