"""Prometheus metrics: the loop's figures from the read models and the bus, and the handlers'.

`ringloop up` (and `ringloop dashboard`, on its page's port) export the loop: games,
training throughput, trainings, promotion decisions by gate, best Elo, consumer lag, dead
letters and held leases, read at scrape time from this process's read models and from the
latest `BusMonitor` sample. Every process that runs handlers (`up`, each `ringloop run`)
exports their delivery latency and outcomes through the runtime's settled-delivery hook.
Names and labels are listed in `METRICS` and in the README; ops/alerts holds the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers import runtime
from ops.dashboard import views as read
from ops.monitor import BusMonitor
from ops.watch_settings import MetricsSettings
from projections import timeline
from projections.tables import Tables

METRICS = {
    "ringloop_games_total": "stored games per config and purpose (selfplay, eval, import)",
    "ringloop_last_selfplay_game_timestamp_seconds": "when the config's newest selfplay game was stored",
    "ringloop_training_samples_per_second": "training throughput of the config's last training",
    "ringloop_training_samples_total": "samples trained on, over every training of the config",
    "ringloop_trainings_total": "trainings per config by outcome (requested, completed, failed)",
    "ringloop_promotion_decisions_total": "the promoter's verdicts per config, decision and gate",
    "ringloop_last_promotion_decision_timestamp_seconds": "time of the config's last verdict; "
    "before the first, of its first selfplay game (the clock the no-decision alert reads)",
    "ringloop_best_elo": "Elo of the config's current best model",
    "ringloop_generation": "the config's generation (promotions so far)",
    "ringloop_consumer_lag": "messages a durable consumer has not been delivered yet",
    "ringloop_consumer_ack_pending": "messages delivered to a durable consumer, not yet acknowledged",
    "ringloop_dead_letters_total": "HandlerFailed events per handler",
    "ringloop_leases_held": "leases the KV bucket holds now, per kind (task type, loop)",
    "ringloop_lease_held_seconds": "how long each held lease has been held by its holder",
    "ringloop_projection_position": "the stream sequence each read model of this process has folded",
    "ringloop_handler_seconds": "time from fetch to settling one delivery, per handler",
    "ringloop_handler_deliveries_total": "settled deliveries per handler and outcome (acked, failed)",
}


class LoopCollector(Collector):
    """The loop's figures, read at scrape time from read models and the bus monitor's sample."""

    def __init__(
        self, views: Callable[[], Mapping[str, Tables]], configs: Sequence[str],
        monitor: BusMonitor | None = None, positions: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:  # fmt: skip
        self.views, self.configs, self.monitor = views, configs, monitor
        self.positions = positions

    def collect(self) -> Iterator[Metric]:
        views = self.views()
        yield from self._games(views)
        yield from self._training(views)
        yield from self._decisions(views)
        yield from self._bus()
        if self.positions is not None:
            position = _gauge("ringloop_projection_position", ["projection"])
            for name, seq in sorted(self.positions().items()):
                position.add_metric([name], seq)
            yield position

    def _games(self, views: Mapping[str, Tables]) -> Iterator[Metric]:
        games = _counter("ringloop_games", ["config", "purpose"])
        last = _gauge("ringloop_last_selfplay_game_timestamp_seconds", ["config"])
        for config in self.configs:
            counts = read.view_row(views, "games", "games_configs", config) or {}
            for purpose in ("selfplay", "eval", "import"):
                games.add_metric([config, purpose], counts.get(purpose) or 0)
            newest = read.view_row(
                views, "games", "games_index", config, counts.get("last_selfplay_seq")
            )
            if newest is not None:
                last.add_metric([config], _seconds(newest["time"]))
        yield games
        yield last

    def _training(self, views: Mapping[str, Tables]) -> Iterator[Metric]:
        rate = _gauge("ringloop_training_samples_per_second", ["config"])
        samples = _counter("ringloop_training_samples", ["config"])
        trainings = _counter("ringloop_trainings", ["config", "outcome"])
        history = views.get("timeline")
        for config in self.configs:
            row = read.view_row(views, "pipeline", "pipeline_configs", config) or {}
            for outcome in ("requested", "completed", "failed"):
                trainings.add_metric([config, outcome], row.get(f"trainings_{outcome}") or 0)
            if history is None:
                continue
            done = [r for r in timeline.entries(history, config=config)
                    if r["kind"] == "training_completed" and r["config"] == config]  # fmt: skip
            samples.add_metric([config], sum(r["details"].get("samples") or 0 for r in done))
            if done:
                rate.add_metric([config], done[-1]["details"].get("samples_per_s") or 0.0)
        yield from (rate, samples, trainings)

    def _decisions(self, views: Mapping[str, Tables]) -> Iterator[Metric]:
        verdicts = _counter("ringloop_promotion_decisions", ["config", "decision", "gate"])
        clock = _gauge("ringloop_last_promotion_decision_timestamp_seconds", ["config"])
        dead = _counter("ringloop_dead_letters", ["handler"])
        best = _gauge("ringloop_best_elo", ["config"])
        generation = _gauge("ringloop_generation", ["config"])
        rows = timeline.entries(views["timeline"]) if "timeline" in views else []
        counts: dict[tuple[str, ...], int] = {}
        last: dict[str, str] = {}
        for entry in rows:
            key: tuple[str, ...]
            if entry["kind"] in timeline.DECISIONS:
                key = (entry["config"], entry["kind"], entry["details"].get("gate") or "")
                last[entry["config"]] = entry["time"]
            elif entry["kind"] == "dead_letter":
                key = (entry["details"].get("handler") or "?",)
            else:
                continue
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            (verdicts if len(key) == 3 else dead).add_metric(list(key), count)
        for config in self.configs:
            first = read.view_row(views, "games", "games_configs", config) or {}
            start = read.view_row(
                views, "games", "games_index", config, first.get("first_selfplay_seq")
            )
            moment = last.get(config) or (start["time"] if start else None)
            if moment is not None:
                clock.add_metric([config], _seconds(moment))
            elo = read.best_elo(views, config)
            if elo is not None:
                best.add_metric([config], elo)
            registry = read.view_row(views, "registry", "registry_configs", config) or {}
            generation.add_metric([config], registry.get("generation") or 0)
        yield from (verdicts, clock, dead, best, generation)

    def _bus(self) -> Iterator[Metric]:
        if self.monitor is None or self.monitor.sample.at is None:
            return
        sample = self.monitor.sample
        lag = _gauge("ringloop_consumer_lag", ["stream", "consumer"])
        pending = _gauge("ringloop_consumer_ack_pending", ["stream", "consumer"])
        for row in sample.consumers:
            lag.add_metric([row["stream"], row["consumer"]], row["lag"])
            pending.add_metric([row["stream"], row["consumer"]], row["ack_pending"])
        held = _gauge("ringloop_leases_held", ["kind"])
        ages = _gauge("ringloop_lease_held_seconds", ["key", "kind"])
        kinds: dict[str, int] = {}
        for lease in sample.leases:
            kinds[lease["kind"]] = kinds.get(lease["kind"], 0) + 1
            if lease["held_s"] is not None:
                ages.add_metric([lease["key"], lease["kind"]], lease["held_s"])
        for kind, count in sorted(kinds.items()):
            held.add_metric([kind], count)
        yield from (lag, pending, held, ages)


def _gauge(name: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, METRICS[name], labels=labels)


def _counter(name: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, METRICS[f"{name}_total"], labels=labels)


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class HandlerMetrics:
    """Delivery latency and outcomes of this process's handlers (the runtime's hook)."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        self.latency = Histogram("ringloop_handler_seconds", METRICS["ringloop_handler_seconds"],
                                 ["handler"], registry=registry, buckets=tuple(buckets))  # fmt: skip
        self.deliveries = Counter(
            "ringloop_handler_deliveries", METRICS["ringloop_handler_deliveries_total"],
            ["handler", "outcome"], registry=registry,
        )  # fmt: skip

    def observe(self, handler: str, outcome: str, seconds: float) -> None:
        self.latency.labels(handler).observe(seconds)
        self.deliveries.labels(handler, outcome).inc()

    def attach(self) -> HandlerMetrics:
        runtime.SETTLED_OBSERVERS.append(self.observe)
        return self

    def detach(self) -> None:
        if self.observe in runtime.SETTLED_OBSERVERS:
            runtime.SETTLED_OBSERVERS.remove(self.observe)


def registry_for(
    settings: MetricsSettings, *, handlers: bool, loop: LoopCollector | None = None
) -> tuple[CollectorRegistry, HandlerMetrics | None]:
    """A fresh registry (never the global one: one process may hold several, as tests do)."""
    registry = CollectorRegistry()
    handler_metrics = HandlerMetrics(registry, settings.latency_buckets) if handlers else None
    if loop is not None:
        registry.register(loop)
    return registry, handler_metrics


class MetricsApp:
    """An ASGI app answering GET /metrics from a registry (404 elsewhere); as a class, a
    Starlette Route serves it as an app of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import make_asgi_app

        self.exposition = make_asgi_app(registry)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            await self.exposition(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"see /metrics\n"})
