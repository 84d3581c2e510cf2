"""The HTTP side of `ringloop serve`: RingRift's AI-service routes (POST /ai/move,
POST /ai/moves_batch, GET /health, GET /) on Starlette, over a Brain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ops.ai_service.contract import (
    BadRequest,
    BatchRequest,
    MoveRequest,
    Position,
    move_json,
    parse,
    position,
    read_json,
)
from ops.ai_service.moves import Brain, choose
from ops.ai_service.settings import DIFFICULTY_BUDGETS


def build_app(brain: Brain, configs: Sequence[str]) -> Starlette:
    """The service's routes; a BadRequest becomes its 4xx with {"detail": message}."""

    async def move(request: Request) -> JSONResponse:
        try:
            item = parse(MoveRequest, read_json(await request.body()))
            [response] = await respond(brain, [position(item)])
        except BadRequest as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return JSONResponse(response)

    async def moves_batch(request: Request) -> JSONResponse:
        try:
            batch = parse(BatchRequest, read_json(await request.body()))
            positions = []
            for index, item in enumerate(batch.requests):
                try:
                    positions.append(position(item))
                except BadRequest as exc:
                    raise BadRequest(f"requests[{index}]: {exc}", exc.status) from None
            responses = await respond(brain, positions)
        except BadRequest as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return JSONResponse({"responses": responses})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "models": brain.models(configs)})

    async def root(request: Request) -> JSONResponse:
        budgets = {d: {"player": b.player, "simulations": b.simulations}
                   for d, b in DIFFICULTY_BUDGETS.items()}  # fmt: skip
        return JSONResponse({"service": "ringloop AI service", "status": "running",
                             "difficulties": budgets})  # fmt: skip

    routes = [
        Route("/ai/move", move, methods=["POST"]),
        Route("/ai/moves_batch", moves_batch, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/", root, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def respond(brain: Brain, positions: list[Position]) -> list[dict[str, Any]]:
    """MoveResponse objects; the searches run in a worker thread, off the event loop."""
    agents = [await brain.agent(p.config, p.budget) for p in positions]
    choices = await asyncio.to_thread(choose, positions, agents)
    return [
        {
            "move": move_json(p.state, c.move, c.thinking_ms),
            "evaluation": c.evaluation,
            "thinking_time_ms": c.thinking_ms,
            "ai_type": c.ai_type,
            "difficulty": p.request.difficulty,
            "config": p.config,
            "model_id": c.model_id,
            "simulations": c.simulations,
        }
        for p, c in zip(positions, choices, strict=True)
    ]


class QuietServer(uvicorn.Server):
    """uvicorn's Server without its own signal handlers: `ringloop serve` stops it itself
    (stop_on_signals) and says so, instead of uvicorn re-raising the signal afterwards."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
