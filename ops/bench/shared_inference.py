"""`ringloop bench selfplay --inference shared --workers N`: N selfplay processes through one
`ringloop inference` service against N processes each holding its own network."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import GameConfig

START_S = 300.0  # the service process starting (imports torch) on a loaded machine


@dataclass(frozen=True)
class Play:
    """What each worker process plays: ``games`` games, ``parallel`` at once, cut at ``max_moves``."""

    config: str
    games: int
    parallel: int
    max_moves: int
    seed: int


def compare(loop: Any, device: Any, network: Any, workers: int, play: Play) -> dict[str, Any]:
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
        local = _run_workers(loop, str(device), state_dir, sha, None, workers, play)
        path = state_dir / "inference.sock"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as `up` starts it: one torch thread
        service = subprocess.Popen([sys.executable, "-m", "ops", "inference", "--state-dir",
                                    str(state_dir), "--socket", str(path), "--device", str(device)],
                                   env=env)  # fmt: skip
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
            shared = _run_workers(loop, str(device), state_dir, sha, path, workers, play)
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


def _run_workers(loop: Any, device: str, state_dir: Path, sha: str, socket_path: Path | None,
                 workers: int, play: Play) -> float:  # fmt: skip
    """Total positions/s of ``workers`` selfplay processes playing together: each sets up
    (imports, its network or its connection) first, then all start at once; the rate is
    every position over the span from the first start to the last finish."""
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Semaphore(0), context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(loop, device, state_dir, sha, socket_path, play, k, ready, go, results),
        )
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=START_S):
            raise RuntimeError(f"a selfplay worker did not get ready within {START_S} s")
    go.set()
    finished = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join(60)
    evals = sum(count for count, _, _ in finished)
    span = max(end for _, _, end in finished) - min(begin for _, begin, _ in finished)
    return evals / span


def _worker(loop: Any, device: str, state_dir: Path, sha: str, socket_path: Path | None,
            play: Play, index: int, ready: Any, go: Any, results: Any) -> None:  # fmt: skip
    import torch

    from engine.network import load_checkpoint
    from engine.players.neural import NetworkEvaluator
    from handlers.agents import model_agent, search_settings
    from handlers.allocator import keep_freed_memory
    from handlers.games import play_games
    from handlers.inference import SharedEvaluator

    torch.set_num_threads(1)
    keep_freed_memory()  # as the selfplay child does
    config = GameConfig.parse(play.config)
    if socket_path is None:
        data = (state_dir / "cache" / "models" / f"{sha}.pt").read_bytes()
        evaluator: Any = NetworkEvaluator(load_checkpoint(data, device=device)[0])
    else:
        evaluator = SharedEvaluator(socket_path, sha, timeout_s=loop.selfplay.inference_timeout_s)
    agent = model_agent("bench", evaluator, search_settings(loop, "selfplay"), sha256=sha,
                        noise=True)  # fmt: skip
    seeds = [(play.seed + index) * 1_000_003 + i for i in range(play.games)]
    ready.release()
    go.wait()
    begin = time.time()  # wall clock: comparable across the processes
    play_games(config, [[agent] * config.num_players] * play.games, seeds,
               max_moves=play.max_moves, adjudication=loop.selfplay.adjudication,
               parallel=play.parallel, pipeline=loop.selfplay.pipeline_interval_s())  # fmt: skip
    results.put((evaluator.positions_evaluated, begin, time.time()))
