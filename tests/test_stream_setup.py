"""Stream setup (`ops.bus.ensure_streams`) on a real nats-server: what it creates, the update
path of a stream set up with older settings, the log's deny delete/purge, retention per
stream, the duplicate window, and a replica count kept when none is asked. (Raising and
not lowering replicas on a 3-node cluster: tests/faults/test_cluster_setup.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import APIError, NotFoundError

from events import LOG_STREAM, DaemonHeartbeat
from events.streams import (
    GAMES_STREAM,
    LEASES_BUCKET,
    MODELS_BUCKET,
    SNAPSHOTS_BUCKET,
    STREAM_SUBJECTS,
    WORK_STREAM,
)
from ops.bus import ensure_streams
from ops.server import EmbeddedServer
from ops.settings import StreamSettings
from projections.eventstore import EventStore

BUCKETS = (f"KV_{LEASES_BUCKET}", f"OBJ_{MODELS_BUCKET}", f"OBJ_{SNAPSHOTS_BUCKET}")


@pytest.fixture
async def nc(nats_server: EmbeddedServer) -> AsyncIterator[Client]:
    """A connection to a server with none of ringloop's streams or buckets (each test sets up
    what it needs)."""
    client = await nats.connect(nats_server.url)
    for name in (*STREAM_SUBJECTS, *BUCKETS):
        try:
            await client.jetstream().delete_stream(name)
        except NotFoundError:
            pass
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


async def config_of(js: JetStreamContext, name: str) -> StreamConfig:
    return (await js.stream_info(name)).config


async def test_fresh_setup_creates_every_stream_and_bucket_then_touches_nothing(
    js: JetStreamContext,
) -> None:
    first = await ensure_streams(js, StreamSettings())
    assert sorted(first.created) == sorted([*STREAM_SUBJECTS, LEASES_BUCKET, MODELS_BUCKET,
                                            SNAPSHOTS_BUCKET])  # fmt: skip
    assert first.updated == [] and first.kept == []
    for name in STREAM_SUBJECTS:
        assert (await config_of(js, name)).subjects == STREAM_SUBJECTS[name]
    again = await ensure_streams(js, StreamSettings())
    assert again.created == again.updated == again.kept == []


async def test_the_log_keeps_everything_and_refuses_delete_and_purge(
    js: JetStreamContext,
) -> None:
    await ensure_streams(js, StreamSettings())
    log = await config_of(js, LOG_STREAM)
    assert log.retention == RetentionPolicy.LIMITS and log.discard == DiscardPolicy.NEW
    assert log.max_msgs == -1 and log.max_bytes == -1 and not log.max_age
    assert log.deny_delete and log.deny_purge
    seq = (await js.publish("loop.system.heartbeat", b"{}")).seq
    with pytest.raises(APIError, match="purge"):
        await js.purge_stream(LOG_STREAM)
    with pytest.raises(APIError, match="delete"):
        await js.delete_msg(LOG_STREAM, seq)
    assert (await js.stream_info(LOG_STREAM)).state.messages == 1


async def test_games_are_bounded_by_the_settings_and_work_items_go_once_acknowledged(
    js: JetStreamContext,
) -> None:
    await ensure_streams(js, StreamSettings(games_max_bytes=4_000, games_max_age_s=3_600))
    games = await config_of(js, GAMES_STREAM)
    assert games.retention == RetentionPolicy.LIMITS and games.discard == DiscardPolicy.OLD
    assert games.max_bytes == 4_000 and games.max_age == 3_600
    for _ in range(20):  # ~10 KB of games: the oldest are dropped to stay under the bound
        await js.publish("games.square8.2p.selfplay", b"x" * 500)
    state = (await js.stream_info(GAMES_STREAM)).state
    assert state.last_seq == 20 and state.first_seq > 1 and state.bytes <= 4_000

    assert (await config_of(js, WORK_STREAM)).retention == RetentionPolicy.WORK_QUEUE
    await js.publish("work.eval.square8_2p", b"item")
    worker = await js.pull_subscribe("work.eval.square8_2p", durable="setup-test-worker")
    [item] = await worker.fetch(1, timeout=10)
    await item.ack_sync()
    assert (await js.stream_info(WORK_STREAM)).state.messages == 0


async def test_an_existing_stream_with_older_settings_is_updated_and_only_once(
    js: JetStreamContext,
) -> None:
    # as an older ringloop (or a hand-made stream) left them: no deny purge/delete, another
    # duplicate window, an unbounded games stream
    await js.add_stream(StreamConfig(name=LOG_STREAM, subjects=["loop.>"], duplicate_window=10))
    await js.add_stream(StreamConfig(name=GAMES_STREAM, subjects=["games.>"], duplicate_window=10))
    await js.publish("loop.system.heartbeat", b"{}")
    wanted = StreamSettings(games_max_bytes=1_000_000, duplicate_window_s=30)
    report = await ensure_streams(js, wanted)
    assert sorted(report.updated) == [GAMES_STREAM, LOG_STREAM]
    assert WORK_STREAM in report.created
    log = await config_of(js, LOG_STREAM)
    assert log.deny_purge and log.deny_delete and log.duplicate_window == 30
    games = await config_of(js, GAMES_STREAM)
    assert games.max_bytes == 1_000_000 and games.duplicate_window == 30
    assert (await config_of(js, WORK_STREAM)).duplicate_window == 30
    assert (await js.stream_info(LOG_STREAM)).state.messages == 1  # an update keeps the log
    again = await ensure_streams(js, wanted)
    assert again.created == again.updated == []
    changed = await ensure_streams(js, StreamSettings(games_max_bytes=2_000_000,
                                                      duplicate_window_s=30))  # fmt: skip
    assert changed.updated == [GAMES_STREAM]
    assert (await config_of(js, GAMES_STREAM)).max_bytes == 2_000_000


async def test_a_copy_inside_the_duplicate_window_is_dropped(
    nc: Client, js: JetStreamContext
) -> None:
    await ensure_streams(js, StreamSettings())
    store = EventStore(nc)
    beat = DaemonHeartbeat(daemon="setup-test")
    first = await store.append(beat)
    assert await store.append(beat) == first  # the original's sequence, nothing stored
    ack = await js.publish(beat.subject(), b"{}", headers={"Nats-Msg-Id": str(beat.event_id)})
    assert ack.duplicate and ack.seq == first
    assert (await js.stream_info(LOG_STREAM)).state.messages == 1


async def test_without_a_replica_count_an_existing_stream_keeps_its_own(
    js: JetStreamContext,
) -> None:
    await ensure_streams(js, StreamSettings(), replicas=1)
    unset = await ensure_streams(js, StreamSettings())
    assert unset.updated == unset.kept == []
    for name in (*STREAM_SUBJECTS, *BUCKETS):
        assert (await config_of(js, name)).num_replicas == 1
