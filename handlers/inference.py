"""Shared inference, the client side: selfplay's evaluator that sends encoded planes to the
host's `ringloop inference` service (ops.inference) over a Unix socket and builds the
legal-move priors from the logits it returns; the frames both sides speak.

A frame is a struct header (JSON length, body length, both unsigned 32-bit big-endian), a
JSON object, then the body: float32 arrays in C order (planes in a request; logits then
values in a reply). Nothing is pickled. Requests: ``open`` (a model by sha256), ``evaluate``
(planes for the opened model), ``stats``; every reply has ``ok``, and ``error`` when not ok.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from engine.players.neural import PlanesEvaluator

if TYPE_CHECKING:
    import torch

    from handlers.settings import LoopSettings, SelfplaySettings

log = structlog.get_logger(__name__)

FRAME = struct.Struct("!II")  # JSON header bytes, body bytes
MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 1 << 31
SOCKET_NAME = "inference.sock"
SUN_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux; keep a margin


class InferenceError(RuntimeError):
    """The shared inference service refused a request; the message says why."""


class InferenceUnavailable(InferenceError):
    """The shared inference service cannot be reached, went away or stopped answering."""


def inference_socket(state_dir: Path) -> Path:
    """The host's service socket: in the state folder, or (a path too long for AF_UNIX)
    under /tmp named after the state folder, so every process of that folder finds it."""
    path = Path(state_dir).resolve() / SOCKET_NAME
    if len(str(path).encode()) <= SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(str(path.parent).encode()).hexdigest()[:16]
    return Path("/tmp") / f"ringloop-{digest}.sock"


def shared_inference(selfplay: SelfplaySettings) -> bool:
    """Whether selfplay goes through the shared service: ``selfplay.inference``, with
    "auto" meaning shared on a CUDA host."""
    if selfplay.inference != "auto":
        return selfplay.inference == "shared"
    import torch

    return bool(torch.cuda.is_available())


# ---------------------------------------------------------------- frames


def frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(len(encoded), len(body)) + encoded + body


def parse_header(prefix: bytes) -> tuple[int, int]:
    """The JSON and body lengths of a frame, checked against the limits."""
    header_bytes, body_bytes = FRAME.unpack(prefix)
    if header_bytes > MAX_HEADER_BYTES or body_bytes > MAX_BODY_BYTES:
        raise ValueError(f"frame of {header_bytes} + {body_bytes} bytes is over the limits")
    return header_bytes, body_bytes


def decode_header(data: bytes) -> dict[str, Any]:
    header = json.loads(data)
    if not isinstance(header, dict):
        raise ValueError(f"a frame header must be a JSON object, got {data[:80]!r}")
    return header


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    chunks, left = [], count
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionResetError("the service closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    header_bytes, body_bytes = parse_header(_receive_exactly(sock, FRAME.size))
    header = decode_header(_receive_exactly(sock, header_bytes))
    return header, _receive_exactly(sock, body_bytes)


# ---------------------------------------------------------------- the client


class InferenceClient:
    """One connection to the service; each call sends a request and waits for its reply."""

    def __init__(self, path: Path, *, timeout_s: float) -> None:
        self.path = Path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        try:
            self.sock.connect(str(self.path))
        except OSError as exc:
            self.sock.close()
            raise InferenceUnavailable(
                f"no inference service at {self.path} ({exc.strerror or exc}); "
                "`ringloop inference` (or `ringloop up` with selfplay.inference shared) runs it"
            ) from None

    def call(self, header: dict[str, Any], body: bytes = b"") -> tuple[dict[str, Any], bytes]:
        try:
            self.sock.sendall(frame(header, body))
            reply, data = receive_frame(self.sock)
        except TimeoutError:
            raise InferenceUnavailable(
                f"the inference service at {self.path} did not answer {header['op']!r} within "
                f"{self.sock.gettimeout()} s (selfplay.inference_timeout_s)"
            ) from None
        except (OSError, ValueError) as exc:
            raise InferenceUnavailable(
                f"the inference service at {self.path} went away during {header['op']!r}: {exc}"
            ) from None
        if not reply.get("ok"):
            raise InferenceError(f"inference service at {self.path}: {reply.get('error')}")
        return reply, data

    def stats(self) -> dict[str, Any]:
        return dict(self.call({"op": "stats"})[0]["stats"])

    def close(self) -> None:
        self.sock.close()


class SharedEvaluator(PlanesEvaluator):
    """NetworkEvaluator's interface (evaluate, evaluate_moves and the same counters) over the
    host's inference service: states are encoded here, the forward pass runs in the service
    batched with other processes' requests, the legal-move priors are built here."""

    def __init__(self, path: Path, model_sha256: str, *, timeout_s: float) -> None:
        self.client = InferenceClient(path, timeout_s=timeout_s)
        try:
            reply, _ = self.client.call({"op": "open", "model": model_sha256})
        except InferenceError:
            self.client.close()
            raise
        import torch

        super().__init__(int(reply["num_players"]))
        self.model_sha256 = model_sha256
        self.device: torch.device = torch.device(reply["device"])

    def forward(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's raw (logits, values) for encoded planes, from the service."""
        header = {"op": "evaluate", "model": self.model_sha256, "shape": list(planes.shape)}
        reply, body = self.client.call(header, planes.astype("<f4", copy=False).tobytes())
        logits_shape, values_shape = tuple(reply["logits"]), tuple(reply["values"])
        split = int(np.prod(logits_shape))
        array = np.frombuffer(body, dtype="<f4")
        if array.size != split + int(np.prod(values_shape)):
            raise InferenceUnavailable(f"reply of {array.size} floats for {reply!r}")
        return array[:split].reshape(logits_shape), array[split:].reshape(values_shape)

    def close(self) -> None:
        self.client.close()


def selfplay_evaluator(
    loop: LoopSettings, sha256: str, checkpoint: bytes, socket_path: Path | None
) -> Any:
    """The evaluator selfplay plays a model with: the host's shared service when
    ``selfplay.inference`` asks for it and the service answers; else (one log line says
    why) a network of its own, loaded from the checkpoint with weights_only."""
    if socket_path is not None and shared_inference(loop.selfplay):
        try:
            return SharedEvaluator(socket_path, sha256, timeout_s=loop.selfplay.inference_timeout_s)
        except InferenceError as exc:
            log.warning("selfplay_inference_fallback", reason=str(exc), playing="local network")
    from engine.network import load_checkpoint
    from engine.players.neural import NetworkEvaluator

    return NetworkEvaluator(load_checkpoint(checkpoint)[0])
