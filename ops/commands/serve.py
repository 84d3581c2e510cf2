"""`ringloop serve`: RingRift's AI-service HTTP contract (/ai/move), playing each config's current best model.

RingRift's game server reaches it unchanged with AI_SERVICE_URL=http://HOST:PORT. The model
of a config is the registry read model's current best, followed live in this process, so a
promotion or a rollback takes effect at the next move; a config without a model plays the
ladder's heuristic-guided search. Difficulties: see ops/ai_service/settings.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ops.ai_service.settings import DEFAULT_HOST, DEFAULT_PORT
from ops.app import App
from ops.commands._common import add_bus_arguments, run_with_app, stop_on_signals


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve RingRift's AI-service API (/ai/move)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"listen address ({DEFAULT_HOST})")
    parser.add_argument(
        "--port", dest="http_port", type=int, default=DEFAULT_PORT,
        help=f"HTTP port ({DEFAULT_PORT}; 0 picks a free one)",
    )  # fmt: skip
    add_bus_arguments(parser, port_flag="--nats-port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.http_port <= 65535:
        print(f"ringloop serve: --port must be 0-65535, got {args.http_port}", file=sys.stderr)
        return 2
    return run_with_app(args, lambda app: serve(app, args))


async def serve(app: App, args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from handlers.models import checkpoint_cache
    from ops.ai_service.app import QuietServer, build_app
    from ops.ai_service.moves import Brain
    from ops.ai_service.settings import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)

    app.start_views(["registry"], ":memory:")
    await app.refresh("registry")
    registry = app.runners["registry"]
    brain = Brain(app.store, lambda: registry.state, app.settings.loop,
                  checkpoint_cache(app.settings.state_dir))  # fmt: skip
    configs = app.settings.loop.configs
    config = uvicorn.Config(build_app(brain, configs), host=args.host, port=args.http_port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = QuietServer(config)
    stop = asyncio.Event()
    stop_on_signals(stop)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if task.done():  # e.g. the port is taken (uvicorn logged why)
        print(f"ringloop serve: cannot listen on {args.host}:{args.http_port}", file=sys.stderr)
        return 2
    port = server.servers[0].sockets[0].getsockname()[1]
    models = brain.models(configs)
    print(f"ringloop serve: listening on http://{args.host}:{port} (AI_SERVICE_URL); models "
          + ", ".join(f"{c}={m or 'none (ladder tiers)'}" for c, m in models.items())
          + "; Ctrl-C stops", file=sys.stderr, flush=True)  # fmt: skip
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    waiter.cancel()
    print(f"ringloop serve: stopped listening on http://{args.host}:{port}", file=sys.stderr)
    return 0
