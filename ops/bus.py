"""Connecting to NATS (embedded or a cluster, with credentials) and idempotent stream setup."""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import nats
import structlog
from nats.aio.client import Client, Server
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from events.streams import (
    GAMES_STREAM,
    LEASES_BUCKET,
    LOG_STREAM,
    MODELS_BUCKET,
    SNAPSHOTS_BUCKET,
    STREAM_SUBJECTS,
    WORK_STREAM,
)
from ops.settings import NatsSettings, StreamSettings, parse_servers
from projections.transient import retry_transient

log = structlog.get_logger(__name__)


CONNECT_TIMEOUT_S = 2.0  # per server, first connect; an unreachable URL fails within ~3 s
RECONNECT_BACKOFF_S = (0.1, 5.0)  # first and largest wait between reconnect attempts


def connect_options(settings: NatsSettings, url: str) -> dict[str, Any]:
    """Keyword arguments for nats.connect: every URL of `url` (comma-separated), credentials
    and TLS passed through; reconnects forever with a backoff (see Reconnects)."""
    options: dict[str, Any] = {
        "servers": parse_servers(url),
        "name": "ringloop",
        "max_reconnect_attempts": -1,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "dont_randomize": False,
    }
    if settings.user is not None:
        options["user"] = settings.user
        options["password"] = settings.password
    if settings.token is not None:
        options["token"] = settings.token
    if settings.creds_file is not None:
        options["user_credentials"] = str(settings.creds_file)
    if settings.nkeys_seed_file is not None:
        options["nkeys_seed"] = str(settings.nkeys_seed_file)
    if settings.tls_ca_file or settings.tls_cert_file:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
        )
        if settings.tls_cert_file and settings.tls_key_file:
            context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
        options["tls"] = context
    if settings.inbox_prefix is not None:
        options["inbox_prefix"] = settings.inbox_prefix
    return options


class BusConnectError(RuntimeError):
    """NATS refused or could not be reached; the message names the URL and the reason."""


class Reconnects:
    """While the bus is away: one warning line when it goes, a line per doubling of the
    attempts, one when it is back; each attempt waits a growing delay (with jitter)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.attempts = 0
        self.since: float | None = None
        self.last_error: BaseException | None = None
        self.client: Client | None = None  # set once connected: a closed client is quiet

    def choose(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server | None, float]:
        """nats-py's reconnect_to_server_handler: the least-tried server, after a backoff."""
        self.attempts += 1
        first, largest = RECONNECT_BACKOFF_S
        delay = min(largest, first * 2 ** min(self.attempts - 1, 16)) * random.uniform(0.8, 1.2)
        if self.attempts & (self.attempts - 1) == 0:  # 1, 2, 4, 8, ...
            log.warning(
                "nats_reconnecting",
                message=f"NATS at {self.url} is away; reconnecting (attempt {self.attempts}, "
                f"next in {delay:.1f}s): {self.last_error!r}",
            )
        server = min(servers, key=lambda s: s.reconnects) if servers else None
        return server, delay

    async def on_error(self, exc: BaseException) -> None:
        self.last_error = exc
        if "permissions violation" in str(exc).lower():  # the server refused a subject
            log.error("nats_permission_denied", url=self.url, error=str(exc))

    async def on_disconnected(self) -> None:
        if self.client is not None and self.client.is_closed:
            return  # closed on purpose (drain, close), not lost
        if self.since is None:
            self.since = time.monotonic()
            log.warning("nats_disconnected", message=f"lost NATS at {self.url}; reconnecting")

    async def on_reconnected(self) -> None:
        away = time.monotonic() - self.since if self.since is not None else 0.0
        log.warning(
            "nats_reconnected",
            message=f"NATS back after {away:.1f}s ({self.attempts} attempt(s))",
            away_s=round(away, 2),
        )
        self.since, self.attempts = None, 0


def reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> list[str]:
    """The servers of `url` that accept a TCP connection within `timeout` (in parallel)."""
    servers = parse_servers(url)

    def probe(server: str) -> bool:
        parts = urlsplit(server)
        try:
            with socket.create_connection((parts.hostname, parts.port or 4222), timeout=timeout):
                return True
        except OSError:
            return False

    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        answers = list(pool.map(probe, servers))
    return [server for server, ok in zip(servers, answers, strict=True) if ok]


async def connect(settings: NatsSettings, url: str) -> Client:
    """Connect to any server of `url`, failing fast and naming the URL when none answers or
    one refuses; the connection then rides out lost servers (Reconnects)."""
    live = await asyncio.to_thread(reachable, url)
    if not live:
        raise BusConnectError(
            f"cannot connect to NATS at {url}: no server answered within {CONNECT_TIMEOUT_S:g}s"
        )
    reconnects = Reconnects(url)
    options = connect_options(settings, url)
    try:
        # A first, non-retrying attempt: a refused login fails at once with the server's
        # reason instead of after the reconnect schedule.
        probe = await nats.connect(
            **{**options, "servers": live, "allow_reconnect": False, "max_reconnect_attempts": 1},
            error_cb=reconnects.on_error,
        )
        await probe.close()
        client = await nats.connect(
            **options,
            error_cb=reconnects.on_error,
            disconnected_cb=reconnects.on_disconnected,
            reconnected_cb=reconnects.on_reconnected,
            reconnect_to_server_handler=reconnects.choose,
        )
        reconnects.client = client
        return client
    except Exception as exc:
        reason = reconnects.last_error or exc
        raise BusConnectError(f"cannot connect to NATS at {url}: {reason!r}") from exc


def stream_configs(streams: StreamSettings, replicas: int) -> list[StreamConfig]:
    """The streams. The log keeps everything and refuses delete and purge; the work queue
    holds each work item until one consumer acknowledges it."""
    window = streams.duplicate_window_s
    games = StreamConfig(
        name=GAMES_STREAM,
        subjects=STREAM_SUBJECTS[GAMES_STREAM],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_bytes=streams.games_max_bytes,
        max_age=streams.games_max_age_s,
        duplicate_window=window,
        num_replicas=replicas,
        allow_atomic=True,
    )
    log_stream = StreamConfig(
        name=LOG_STREAM,
        subjects=STREAM_SUBJECTS[LOG_STREAM],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.NEW,
        duplicate_window=window,
        num_replicas=replicas,
        deny_delete=True,
        deny_purge=True,
        allow_atomic=True,
    )
    work = StreamConfig(
        name=WORK_STREAM,
        subjects=STREAM_SUBJECTS[WORK_STREAM],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=window,
        num_replicas=replicas,
    )
    return [games, log_stream, work]


@dataclass(frozen=True)
class SetupReport:
    created: list[str]
    updated: list[str]
    kept: list[str] = field(default_factory=list)  # replicas above the request, not lowered


def chosen_replicas(
    name: str, existing: int, requested: int | None, *, lower: bool, kept: list[str]
) -> int:
    """The replica count setup gives an existing stream: the request, but never fewer than
    it has unless `lower` (then `kept` names it)."""
    if requested is None:
        return existing
    if requested < existing and not lower:
        log.warning(
            "replicas_kept",
            stream=name,
            message=f"{name} keeps {existing} replicas (asked {requested}; "
            "--lower-replicas lowers it)",
        )
        kept.append(name)
        return existing
    return requested


async def ensure_streams(
    js: JetStreamContext,
    streams: StreamSettings,
    *,
    replicas: int | None = None,
    lower_replicas: bool = False,
) -> SetupReport:
    """Create or update the streams, the lease KV bucket and the model and snapshot Object
    Stores. New ones get `replicas` (default 1); existing ones are raised to it, and lowered
    only with `lower_replicas`; a stream whose config already matches is left untouched."""
    report = SetupReport([], [])
    for config in stream_configs(streams, replicas or 1):
        await retry_transient(
            functools.partial(_ensure_stream, js, config, replicas, lower_replicas, report),
            what=f"setting up stream {config.name}",
        )
    await retry_transient(
        lambda: _ensure_buckets(js, replicas, lower_replicas, report), what="setting up buckets"
    )
    log.info("streams_ready", created=report.created, updated=report.updated, replicas=replicas)
    return report


async def _ensure_stream(
    js: JetStreamContext,
    config: StreamConfig,
    replicas: int | None,
    lower: bool,
    report: SetupReport,
) -> None:
    name = str(config.name)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        report.created.append(name)
        return
    existing = int(info.config.num_replicas or 1)
    config.num_replicas = chosen_replicas(name, existing, replicas, lower=lower, kept=report.kept)
    if _differs(info.config, config):
        await js.update_stream(config)
        report.updated.append(name)


def _differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether any field setup sets differs from the stream's current config."""
    ours = {k: v for k, v in wanted.as_dict().items() if v is not None}
    theirs = current.as_dict()
    return any(theirs.get(key) != value for key, value in ours.items())


async def _ensure_buckets(
    js: JetStreamContext, replicas: int | None, lower: bool, report: SetupReport
) -> None:
    try:
        await js.key_value(LEASES_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=LEASES_BUCKET, history=1, replicas=replicas or 1, limit_marker_ttl=5
            )
        )
        report.created.append(LEASES_BUCKET)
    else:
        await _rescale(js, f"KV_{LEASES_BUCKET}", replicas, lower, report)
    for bucket in (MODELS_BUCKET, SNAPSHOTS_BUCKET):
        try:
            await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):
            await js.create_object_store(
                bucket, ObjectStoreConfig(replicas=replicas or 1, storage=StorageType.FILE)
            )
            report.created.append(bucket)
        else:
            await _rescale(js, f"OBJ_{bucket}", replicas, lower, report)


async def _rescale(
    js: JetStreamContext, stream: str, replicas: int | None, lower: bool, report: SetupReport
) -> None:
    """A bucket's underlying stream gets the chosen replica count (nothing else changes)."""
    info = await js.stream_info(stream)
    existing = int(info.config.num_replicas or 1)
    wanted = chosen_replicas(stream, existing, replicas, lower=lower, kept=report.kept)
    if wanted != existing:
        config = info.config
        config.num_replicas = wanted
        await js.update_stream(config)
        report.updated.append(stream)
