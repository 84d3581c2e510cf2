"""The host's shared inference service: holds the networks selfplay plays with (by sha256,
from the state folder's checkpoint cache, weights_only) and answers every local client's
forward passes in batches gathered across clients (frames: handlers.inference).

A batch is launched when it reaches ``max_batch`` positions, when every connected client
has a request in (nobody else can join), or when its oldest request has waited ``wait_s``;
the forward pass runs in a thread, so requests arriving meanwhile form the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from handlers.inference import FRAME, decode_header, frame, parse_header
from ops.processes import die_with_parent, forget, record

log = structlog.get_logger(__name__)


@dataclass
class _Request:
    model: str
    planes: np.ndarray
    answer: asyncio.Future[tuple[np.ndarray, np.ndarray]]
    arrived: float


@dataclass
class _Stats:
    requests: int = 0
    batches: int = 0
    positions: int = 0
    largest_batch: int = 0
    seconds_forward: float = 0.0


@dataclass
class InferenceService:
    """Serves forward passes of the cached checkpoints to clients on one Unix socket."""

    cache_dir: Path
    device: Any  # torch.device
    max_batch: int
    wait_s: float
    networks: dict[str, Any] = field(default_factory=dict)  # sha256 -> its NetworkEvaluator
    pending: list[_Request] = field(default_factory=list)
    clients: int = 0  # connections that opened a model
    stats: _Stats = field(default_factory=_Stats)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, path: Path, stop: asyncio.Event) -> None:
        """Listen on ``path`` until ``stop`` is set (the socket file is removed after)."""
        server = await asyncio.start_unix_server(self._connection, path=str(path))
        batcher = asyncio.create_task(self._batches())
        try:
            await stop.wait()
        finally:
            batcher.cancel()
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
            Path(path).unlink(missing_ok=True)

    # ---------------------------------------------------------------- connections

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened: str | None = None
        try:
            while True:
                try:
                    header, body = await _read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except ValueError as exc:
                    writer.write(frame({"ok": False, "error": str(exc)}))
                    return
                reply, data = await self._answer(header, body, opened)
                if reply.get("ok") and header.get("op") == "open" and opened is None:
                    opened = str(header["model"])
                    self._joined(+1)
                writer.write(frame(reply, data))
                await writer.drain()
        except ConnectionError:
            return  # the client went away while its request was served
        finally:
            if opened is not None:
                self._joined(-1)
            writer.close()

    def _joined(self, change: int) -> None:
        self.clients += change
        self._changed.set()

    async def _answer(
        self, header: dict[str, Any], body: bytes, opened: str | None
    ) -> tuple[dict[str, Any], bytes]:
        match header.get("op"):
            case "open":
                return await self._open(str(header.get("model"))), b""
            case "evaluate":
                return await self._evaluate(header, body, opened)
            case "stats":
                return {"ok": True, "stats": self.report()}, b""
            case other:
                return {"ok": False, "error": f"unknown op {other!r} (open, evaluate, stats)"}, b""

    async def _open(self, sha: str) -> dict[str, Any]:
        if sha not in self.networks:
            try:
                self.networks[sha] = await asyncio.to_thread(self._load, sha)
            except (OSError, ValueError, RuntimeError) as exc:
                return {"ok": False, "error": str(exc)}
            log.info("inference_model_loaded", model=sha, device=str(self.device))
        spec = self.networks[sha].model.spec
        return {"ok": True, "device": str(self.device), "num_players": spec.num_players}

    def _load(self, sha: str) -> Any:
        from engine.network import load_checkpoint
        from engine.players.neural import NetworkEvaluator

        path = self.cache_dir / f"{sha}.pt"
        if len(sha) != 64 or not path.exists():
            raise ValueError(
                f"model {sha!r} is unknown to the inference service: no checkpoint {path} "
                "(selfplay caches a model's checkpoint there before it plays with it)"
            )
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"checkpoint {path} does not have sha256 {sha}")
        return NetworkEvaluator(load_checkpoint(data, device=self.device)[0], device=self.device)

    async def _evaluate(
        self, header: dict[str, Any], body: bytes, opened: str | None
    ) -> tuple[dict[str, Any], bytes]:
        try:
            planes = self._planes(header, body, opened)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}, b""
        answer = asyncio.get_running_loop().create_future()
        self.pending.append(_Request(opened or "", planes, answer, time.monotonic()))
        self._changed.set()
        try:
            logits, values = await answer
        except Exception as exc:  # the forward pass's error goes to every client of the batch
            return {"ok": False, "error": f"forward pass failed: {exc}"}, b""
        reply = {"ok": True, "logits": list(logits.shape), "values": list(values.shape)}
        return reply, logits.astype("<f4").tobytes() + values.astype("<f4").tobytes()

    def _planes(self, header: dict[str, Any], body: bytes, opened: str | None) -> np.ndarray:
        """The request's planes, checked against the model this connection opened."""
        if opened is None or header.get("model") != opened:
            raise ValueError(f"evaluate for model {header.get('model')!r}, opened {opened!r}")
        spec = self.networks[opened].model.spec
        shape = header.get("shape")
        expected = [spec.in_planes, spec.height, spec.width]
        if not isinstance(shape, list) or len(shape) != 4 or shape[1:] != expected:
            raise ValueError(
                f"planes of shape {shape!r}; model {opened[:12]} takes [N, *{expected}]"
            )
        if shape[0] < 1 or len(body) != 4 * int(np.prod(shape)):
            raise ValueError(f"planes of shape {shape!r} in a body of {len(body)} bytes")
        return np.frombuffer(body, dtype="<f4").reshape(shape)

    # ---------------------------------------------------------------- batching

    async def _batches(self) -> None:
        while True:
            await self._launchable()
            batch = self._take()
            await self._run(batch)

    async def _launchable(self) -> None:
        """Wait until the oldest request's batch should run (see the module docstring)."""
        while True:
            self._changed.clear()
            timeout: float | None = None
            if self.pending:
                due = self.pending[0].arrived + self.wait_s - time.monotonic()
                full = self._positions(self.pending[0].model) >= self.max_batch
                if full or len(self.pending) >= self.clients or due <= 0:
                    return
                timeout = due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def _positions(self, model: str) -> int:
        return sum(len(r.planes) for r in self.pending if r.model == model)

    def _take(self) -> list[_Request]:
        """The oldest request and the others of its model, up to ``max_batch`` positions."""
        model, size = self.pending[0].model, 0
        taken: list[_Request] = []
        for request in list(self.pending):
            if request.model == model and (
                not taken or size + len(request.planes) <= self.max_batch
            ):
                taken.append(request)
                size += len(request.planes)
                self.pending.remove(request)
        return taken

    async def _run(self, batch: list[_Request]) -> None:
        planes = np.concatenate([r.planes for r in batch])
        started = time.perf_counter()
        try:
            logits, values = await asyncio.to_thread(self._forward, batch[0].model, planes)
        except Exception as exc:  # answered to each client of the batch, not swallowed
            log.error("inference_forward_failed", error=str(exc), positions=len(planes))
            for request in batch:
                request.answer.set_exception(exc)
            return
        self.stats.seconds_forward += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.positions += len(planes)
        self.stats.largest_batch = max(self.stats.largest_batch, len(planes))
        offset = 0
        for request in batch:
            end = offset + len(request.planes)
            if not request.answer.done():
                request.answer.set_result((logits[offset:end], values[offset:end]))
            offset = end

    def _forward(self, model: str, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forward: tuple[np.ndarray, np.ndarray] = self.networks[model].forward(planes)
        return forward

    def report(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "device": str(self.device),
            "clients": self.clients,
            "models": sorted(self.networks),
            "requests": stats.requests,
            "batches": stats.batches,
            "positions": stats.positions,
            "largest_batch": stats.largest_batch,
            "avg_batch": round(stats.positions / max(stats.batches, 1), 2),
            "seconds_forward": round(stats.seconds_forward, 3),
        }


async def _read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    header_bytes, body_bytes = parse_header(await reader.readexactly(FRAME.size))
    header = decode_header(await reader.readexactly(header_bytes))
    return header, await reader.readexactly(body_bytes)


# ---------------------------------------------------------------- the service as a child


def start_for_loop(settings: Any, argv: list[str]) -> InferenceProcess | None:
    """`up`'s service for this host when ``selfplay.inference`` asks for shared inference
    (``argv``: the bus options every child of `up` gets)."""
    from handlers.inference import shared_inference

    if not shared_inference(settings.loop.selfplay):
        return None
    return InferenceProcess(argv, settings.state_dir)


class InferenceProcess:
    """`ringloop inference` as a child of `up` (recorded, dies with it); `stop` ends it."""

    def __init__(self, argv: list[str], state_dir: Path) -> None:
        self.state_dir = state_dir
        env = {**os.environ}
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ops", "inference", *argv],
            env=env,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        with contextlib.suppress(Exception):
            record(state_dir, "inference", self.process.pid)
        log.info("child_started", handler="inference", pid=self.process.pid)

    async def stop(self, timeout: float = 60.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        forget(self.state_dir, "inference", self.process.pid)
