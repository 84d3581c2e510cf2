"""Starts what lets people watch a process: the bus monitor, the dashboard, /metrics.

`ringloop up`: the dashboard (its port) and the loop's and its handlers' metrics (the
metrics port). `ringloop run <handler>`: its handlers' metrics. `ringloop dashboard`: the
page, with the loop's metrics at /metrics on the same port. Each URL is printed and written
to the state folder (`dashboard.url`, `metrics.url`) so scripts and tests can find it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.app import App
from ops.http_service import HttpService
from ops.metrics import HandlerMetrics, LoopCollector, MetricsApp, registry_for
from ops.monitor import BusMonitor


@dataclass
class Watching:
    """What was started; `stop()` stops it all (and removes the URL files)."""

    app: App
    monitor: BusMonitor | None = None
    services: list[HttpService] = field(default_factory=list)
    handler_metrics: HandlerMetrics | None = None
    urls: dict[str, str] = field(default_factory=dict)
    url_files: list[Path] = field(default_factory=list)

    async def stop(self) -> None:
        for service in self.services:
            await service.stop()
        for path in self.url_files:
            path.unlink(missing_ok=True)
        if self.handler_metrics is not None:
            self.handler_metrics.detach()
        if self.monitor is not None:
            await self.monitor.stop()


def loop_collector(app: App, monitor: BusMonitor | None) -> LoopCollector:
    def views() -> dict[str, Any]:
        return {name: runner.state for name, runner in app.runners.items()}

    def positions() -> dict[str, int]:
        return {name: runner.position for name, runner in app.runners.items()}

    return LoopCollector(views, app.settings.loop.configs, monitor, positions)


async def start_watching(
    app: App, *, dashboard: bool, loop_metrics: bool, handler_metrics: bool, metrics_port: int
) -> Watching:
    """Start the parts asked for (each also subject to its settings' `enabled`)."""
    settings = app.settings
    watching = Watching(app)
    try:
        if dashboard or loop_metrics:
            every = min(settings.dashboard.bus_every_s, settings.metrics.sample_every_s)
            watching.monitor = BusMonitor(app.store, every).start()
        if dashboard and settings.dashboard.enabled:
            await _serve(watching, "dashboard", _dashboard_app(app, watching.monitor,
                                                               with_metrics=False),
                         settings.dashboard.host, settings.dashboard.port)  # fmt: skip
        if settings.metrics.enabled and (loop_metrics or handler_metrics):
            loop = loop_collector(app, watching.monitor) if loop_metrics else None
            registry, watching.handler_metrics = registry_for(
                settings.metrics, handlers=handler_metrics, loop=loop
            )
            if watching.handler_metrics is not None:
                watching.handler_metrics.attach()
            await _serve(watching, "metrics", MetricsApp(registry), settings.metrics.host,
                         metrics_port, url_file=loop_metrics)  # fmt: skip
    except BaseException:
        await watching.stop()
        raise
    return watching


async def start_dashboard_alone(app: App) -> Watching:
    """`ringloop dashboard`: the page and the loop's metrics (at /metrics) on one port."""
    settings = app.settings
    watching = Watching(app, monitor=BusMonitor(app.store, settings.dashboard.bus_every_s).start())
    try:
        await _serve(watching, "dashboard", _dashboard_app(app, watching.monitor,
                                                           with_metrics=True),
                     settings.dashboard.host, settings.dashboard.port)  # fmt: skip
    except BaseException:
        await watching.stop()
        raise
    return watching


def _dashboard_app(app: App, monitor: BusMonitor | None, *, with_metrics: bool) -> Any:
    from starlette.routing import Route

    from ops.dashboard.server import Dashboard, web_app

    assert monitor is not None
    routes = []
    if with_metrics:
        registry, _ = registry_for(app.settings.metrics, handlers=False,
                                   loop=loop_collector(app, monitor))  # fmt: skip
        routes.append(Route("/metrics", MetricsApp(registry)))
    return web_app(Dashboard(app, monitor, app.settings.dashboard), routes)


async def _serve(
    watching: Watching, name: str, asgi: Any, host: str, port: int, *, url_file: bool = True
) -> None:
    """Serve; the URL file only for the state folder's one loop (or dashboard), not for
    `ringloop run` processes, of which one folder may have many."""
    service = HttpService(asgi, host, port, name=name)
    path = watching.app.settings.state_dir / f"{name}.url" if url_file else None
    url = await service.start()
    watching.services.append(service)
    watching.urls[name] = url if name == "dashboard" else f"{url}metrics"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(watching.urls[name])
        watching.url_files.append(path)


def announce(command: str, watching: Watching) -> None:
    for name, url in watching.urls.items():
        print(f"ringloop {command}: {name} {url}", file=sys.stderr, flush=True)
