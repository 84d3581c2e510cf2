"""Setup on a 3-node cluster: R3 streams, KV and Object Stores; a later setup asking fewer
replicas keeps them (only --lower-replicas lowers, and then every one); read-only commands change nothing;
`status` shows replicas, leaders and the cluster's health."""

from __future__ import annotations

import json

import nats
import nats.js.errors
import pytest

from events.streams import STREAM_SUBJECTS
from ops.bus import ensure_streams
from ops.cli import main
from ops.cluster import LoopbackCluster
from ops.settings import StreamSettings
from ops.status import BUCKET_STREAMS

ALL = (*STREAM_SUBJECTS, *BUCKET_STREAMS)


async def replicas(url: str) -> dict[str, int]:
    nc = await nats.connect(url.split(","))
    try:
        js = nc.jetstream()
        return {name: int((await js.stream_info(name)).config.num_replicas or 0) for name in ALL}
    finally:
        await nc.close()


async def test_setup_raises_never_lowers_unasked(cluster: LoopbackCluster) -> None:
    nc = await nats.connect(cluster.urls)
    js = nc.jetstream()
    try:
        for name in ALL:  # a fresh cluster, whatever ran before
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                pass
        first = await ensure_streams(js, StreamSettings(), replicas=3)
        assert set(first.created) >= set(STREAM_SUBJECTS)
        assert await replicas(cluster.url) == dict.fromkeys(ALL, 3)
        again = await ensure_streams(js, StreamSettings(), replicas=3)
        assert again.created == again.updated == []  # nothing to change: nothing touched
        fewer = await ensure_streams(js, StreamSettings(), replicas=1)
        assert sorted(fewer.kept) == sorted(ALL) and fewer.updated == []
        unset = await ensure_streams(js, StreamSettings())
        assert unset.kept == [] and unset.updated == []
        assert await replicas(cluster.url) == dict.fromkeys(ALL, 3)
    finally:
        await nc.close()


async def r3(cluster: LoopbackCluster) -> None:
    nc = await nats.connect(cluster.urls)
    try:
        await ensure_streams(nc.jetstream(), StreamSettings(), replicas=3)
    finally:
        await nc.close()


async def test_lower_replicas_lowers_every_stream_and_bucket(cluster: LoopbackCluster) -> None:
    await r3(cluster)
    nc = await nats.connect(cluster.urls)
    js = nc.jetstream()
    try:
        lowered = await ensure_streams(js, StreamSettings(), replicas=1, lower_replicas=True)
        assert sorted(lowered.updated) == sorted(ALL) and lowered.kept == []
        assert await replicas(cluster.url) == dict.fromkeys(ALL, 1)
    finally:
        await nc.close()
    await r3(cluster)  # raised back: the cluster as the other tests expect it
    assert await replicas(cluster.url) == dict.fromkeys(ALL, 3)


def test_read_only_commands_keep_r3_and_status_shows_health(
    cluster: LoopbackCluster,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    asyncio.run(r3(cluster))  # whatever ran before: R3 everywhere
    state = str(tmp_path_factory.mktemp("state"))
    base = ["--nats", cluster.url, "--state-dir", state]
    assert main(["replay", "--check", *base]) == 0
    capsys.readouterr()
    assert main(["status", "--json", *base]) == 0
    status = json.loads(capsys.readouterr().out)
    cluster_view = status["cluster"]
    assert cluster_view["cluster"] == "ringloop" and cluster_view["health"] == "ok"
    by_name = {s["stream"]: s for s in cluster_view["streams"]}
    for name in ALL:
        assert by_name[name]["replicas"] == 3 and by_name[name]["leader"]
        assert len(by_name[name]["peers"]) == 2
    assert asyncio.run(replicas(cluster.url)) == dict.fromkeys(ALL, 3)
    assert main(["status", *base]) == 0
    text = capsys.readouterr().out
    assert "health ok" in text and "R3  leader" in text
