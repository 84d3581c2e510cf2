"""Connecting to NATS (embedded or a cluster, with credentials) and idempotent stream setup."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import nats
import structlog
from nats.aio.client import Client
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
from ops.settings import NatsSettings, StreamSettings

log = structlog.get_logger(__name__)


def connect_options(settings: NatsSettings, url: str) -> dict[str, Any]:
    """Keyword arguments for nats.connect: credentials and TLS passed through."""
    options: dict[str, Any] = {
        "servers": [url],
        "name": "ringloop",
        "max_reconnect_attempts": 10,
        "connect_timeout": 5,
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


async def connect(settings: NatsSettings, url: str) -> Client:
    """Connect, turning nats-py's generic failure into one naming the server's reason."""
    errors: list[BaseException] = []

    async def remember(exc: BaseException) -> None:
        errors.append(exc)
        if "permissions violation" in str(exc).lower():  # the server refused a subject
            log.error("nats_permission_denied", url=url, error=str(exc))

    options = connect_options(settings, url)
    try:
        # A first, non-retrying attempt: a refused login fails at once with the server's
        # reason instead of after the reconnect schedule.
        probe = await nats.connect(**{**options, "allow_reconnect": False}, error_cb=remember)
        await probe.close()
        return await nats.connect(**options, error_cb=remember)
    except Exception as exc:
        reason = errors[-1] if errors else exc
        raise BusConnectError(f"cannot connect to NATS at {url}: {reason}") from exc


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


async def ensure_streams(
    js: JetStreamContext, streams: StreamSettings, *, replicas: int = 1
) -> SetupReport:
    """Create or update the streams, the lease KV bucket and the model and snapshot Object Stores."""
    created: list[str] = []
    updated: list[str] = []
    for config in stream_configs(streams, replicas):
        try:
            await js.stream_info(config.name)  # type: ignore[arg-type]
        except NotFoundError:
            await js.add_stream(config)
            created.append(config.name)  # type: ignore[arg-type]
        else:
            await js.update_stream(config)
            updated.append(config.name)  # type: ignore[arg-type]
    try:
        await js.key_value(LEASES_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(bucket=LEASES_BUCKET, history=1, replicas=replicas, limit_marker_ttl=5)
        )
        created.append(LEASES_BUCKET)
    for bucket in (MODELS_BUCKET, SNAPSHOTS_BUCKET):
        try:
            await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):
            await js.create_object_store(
                bucket, ObjectStoreConfig(replicas=replicas, storage=StorageType.FILE)
            )
            created.append(bucket)
    log.info("streams_ready", created=created, updated=updated, replicas=replicas)
    return SetupReport(created, updated)
