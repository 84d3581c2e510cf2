"""The dashboard's web app (Starlette): the page, its JSON reads and the live event stream.

Reads go through this process's read models (`App.runners`, following the streams) and the
bus monitor's sample; `/api/stream` is Server-Sent Events: a new state whenever a read model
moved or the bus sample changed. Game records are read from RINGLOOP_GAMES by sequence and
replayed by the engine; `explain` follows a model's causal chain through the log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from nats.js.errors import NotFoundError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from events import GAMES_STREAM, EventDecodeError, GameCompleted, decode
from ops.app import App
from ops.dashboard import boards
from ops.dashboard import views as read
from ops.explain import UnknownModel, explain_model
from ops.monitor import BusMonitor
from ops.watch_settings import DashboardSettings

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
RATE_WINDOW_S = 60.0  # games/s on the page: the selfplay games of the last minute
KEEPALIVE_S = 15.0
REFRESH_S = 10.0  # a quiet loop's state is still sent this often (games/s falls to 0)


class BadRequest(ValueError):
    """A request the page (or a person) got wrong: answered 400 with the message."""


class Dashboard:
    """The page's data, from one process's read models and bus monitor."""

    def __init__(self, app: App, monitor: BusMonitor, settings: DashboardSettings) -> None:
        self.app, self.monitor, self.settings = app, monitor, settings
        self.configs = app.settings.loop.configs
        self._counts: deque[tuple[float, dict[str, int]]] = deque()
        self._ml: dict[str, tuple[int, dict[str, Any]]] = {}
        self._event: tuple[tuple[Any, ...], str] | None = None

    def views(self) -> dict[str, Any]:
        return {name: runner.state for name, runner in self.app.runners.items()}

    def positions(self) -> dict[str, int]:
        return {name: runner.position for name, runner in self.app.runners.items()}

    def rates(self) -> dict[str, float]:
        """Selfplay games/s per config over the last minute, from the games read model."""
        now = time.monotonic()
        counts = read.selfplay_counts(self.views(), self.configs)
        self._counts.append((now, counts))
        while len(self._counts) > 2 and now - self._counts[1][0] >= RATE_WINDOW_S:
            self._counts.popleft()
        then, before = self._counts[0]
        elapsed = now - then
        return {c: (counts[c] - before.get(c, counts[c])) / elapsed if elapsed > 0 else 0.0
                for c in self.configs}  # fmt: skip

    def state(self) -> dict[str, Any]:
        """Everything the page's top half shows, as of now."""
        views, sample = self.views(), self.monitor.sample
        rates = self.rates()
        overview = read.overview(views, self.configs)
        for row in overview:
            row["games_per_s"] = round(rates[row["config"]], 3)
            row["samples_per_s"] = read.last_samples_per_s(views, row["config"])
        return {
            "configs": overview, "positions": self.positions(),
            "consumers": sample.consumers, "leases": sample.leases, "bus_at": sample.at,
            "tasks": read.open_tasks(views),
            "dead_letters": read.dead_letters(views, 20),
            "timeline": read.timeline_rows(views, None, self.settings.timeline_rows),
        }  # fmt: skip

    async def config(self, config: str) -> dict[str, Any]:
        """One config's charts: ratings per generation, losses, throughput, games."""
        views = self.views()
        ml = await self._ml_fit(config)
        return {
            "config": config, "ratings": read.ratings(views, config, ml),
            "losses": read.losses(views, config), "throughput": read.throughput(views, config),
            "games": read.games(views, config, self.settings.games_listed),
        }  # fmt: skip

    async def _ml_fit(self, config: str) -> dict[str, Any]:
        """The config's ML ratings, refitted (in a thread) only when the Elo view moved."""
        runner = self.app.runners.get("elo")
        position = runner.position if runner is not None else 0
        cached = self._ml.get(config)
        if cached is not None and cached[0] == position:
            return cached[1]
        matches = read.rated_matches(self.views(), config)
        fit = await asyncio.to_thread(read.ml_fit, matches) if matches else {}
        self._ml[config] = (position, fit)
        return fit

    async def game(self, seq: int) -> dict[str, Any]:
        try:
            record = await self.app.store.get(GAMES_STREAM, seq)
            event = decode(record.data)
        except NotFoundError:
            raise BadRequest(f"no game at {GAMES_STREAM} sequence {seq}") from None
        except EventDecodeError as exc:
            raise BadRequest(f"{GAMES_STREAM} #{seq} does not decode: {exc}") from None
        if not isinstance(event, GameCompleted):
            raise BadRequest(f"{GAMES_STREAM} #{seq} is a {event.type}, not a game")
        replay = await asyncio.to_thread(boards.replay, event)
        return {"seq": seq, **replay}

    def version(self) -> tuple[Any, ...]:
        """What the state depends on; the time slot refreshes rates on a quiet loop too."""
        slot = int(time.monotonic() // REFRESH_S)
        return tuple(sorted(self.positions().items())), self.monitor.sample.version, slot

    def state_event(self, version: tuple[Any, ...]) -> str:
        """The state as one SSE message, built once per version for every open page."""
        if self._event is None or self._event[0] != version:
            data = json.dumps(self.state(), default=str)
            self._event = (version, f"event: state\ndata: {data}\n\n")
        return self._event[1]


# ------------------------------------------------------------ the web app


def web_app(dashboard: Dashboard, extra_routes: list[Any] | None = None) -> Starlette:
    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def state(_: Request) -> Response:
        return _json(dashboard.state())

    async def config(request: Request) -> Response:
        name = request.path_params["config"]
        try:
            read.known_config(dashboard.configs, name)
        except ValueError as exc:
            return _error(str(exc))
        return _json(await dashboard.config(name))

    async def game(request: Request) -> Response:
        text = request.path_params["seq"]
        try:
            seq = int(text)
            if seq < 1:
                raise ValueError
        except ValueError:
            return _error(f"game sequence must be a positive integer, got {text!r}")
        try:
            return _json(await dashboard.game(seq))
        except BadRequest as exc:
            return _error(str(exc), 404)

    async def explain(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        try:
            explanation = await explain_model(dashboard.app.store, model_id)
        except UnknownModel as exc:
            return _error(str(exc), 404)
        return _json(explanation.as_dict())

    async def stream(request: Request) -> Response:
        return StreamingResponse(_events(dashboard, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    async def no_icon(_: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", index),
        Route("/favicon.ico", no_icon),
        Route("/api/state", state),
        Route("/api/config/{config}", config),
        Route("/api/game/{seq}", game),
        Route("/api/explain/{model_id:path}", explain),
        Route("/api/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *(extra_routes or []),
    ]
    return Starlette(routes=routes)


async def _events(dashboard: Dashboard, request: Request) -> AsyncIterator[str]:
    """A state event whenever a read model moved or the bus sample changed; keep-alives."""
    seen: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        version = dashboard.version()
        if version != seen:
            seen, quiet_since = version, time.monotonic()
            yield dashboard.state_event(version)
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(dashboard.settings.poll_s)


def _json(data: Any) -> Response:
    return Response(json.dumps(data, default=str), media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)
