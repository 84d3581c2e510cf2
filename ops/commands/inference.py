"""`ringloop inference`: the host's shared inference service — one batched forward pass for the requests of all its selfplay processes."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

from ops.commands._common import (
    add_bus_arguments,
    add_profile_argument,
    settings_from,
    with_profile,
)
from ops.settings import SettingsError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inference",
        help="serve batched forward passes to this host's selfplay processes (Unix socket)",
    )
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--socket", type=Path, help="socket path (default: in the state folder)")
    add_bus_arguments(parser)  # the same options as every child of `up`; no bus is used
    add_profile_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handlers.inference import inference_socket
    from handlers.models import checkpoint_cache
    from ops.logging import configure_logging

    configure_logging(args.log_level)
    try:
        settings = with_profile(settings_from(args), args.profile)
    except (SettingsError, ValueError) as exc:
        print(f"ringloop inference: {exc}", file=sys.stderr)
        return 2
    path = args.socket or inference_socket(settings.state_dir)
    if _answers(path):
        print(f"ringloop inference: a service already answers on {path}", file=sys.stderr)
        return 3
    try:
        device = _device(args.device)
    except ValueError as exc:
        print(f"ringloop inference: {exc}", file=sys.stderr)
        return 2
    path.unlink(missing_ok=True)  # a socket file left by a killed service
    selfplay = settings.loop.selfplay
    from ops.inference import InferenceService

    service = InferenceService(checkpoint_cache(settings.state_dir), device,
                               max_batch=selfplay.inference_max_batch,
                               wait_s=selfplay.inference_wait_ms / 1000)  # fmt: skip
    print(f"ringloop inference: serving on {path} (device {device}, batches up to "
          f"{selfplay.inference_max_batch})", file=sys.stderr, flush=True)  # fmt: skip
    try:
        asyncio.run(_serve(service, path))
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(service: Any, path: Path) -> None:
    from ops.commands._common import stop_on_signals

    stop = asyncio.Event()
    stop_on_signals(stop)
    await service.serve(path, stop)


def _device(name: str | None) -> Any:
    import torch

    from engine.network import select_device

    try:
        device = torch.device(name) if name else select_device()
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {name!r} is not usable here: {exc}") from None
    if device.type == "cpu":
        torch.set_num_threads(1)  # one core, as each selfplay process; they share the host
    return device


def _answers(path: Path) -> bool:
    """Whether a live service listens on ``path`` (a stale socket file refuses)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
