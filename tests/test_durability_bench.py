"""The durability bench's parts against real servers: a routed 3-node loopback cluster with
R3 streams survives the SIGKILL of its log leader, and a killed single server, restarted,
keeps every acknowledged append (small counts; `ringloop bench events` runs the real sizes)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ops.bench.durability import loopback_cluster, measure_setup, render, single_server

pytestmark = pytest.mark.slow

SMALL = argparse.Namespace(durability_sync=100, durability_pipelined=400, durability_trial=400)


async def test_r3_on_a_loopback_cluster_loses_nothing_when_its_leader_is_killed(
    tmp_path: Path,
) -> None:
    cluster = loopback_cluster(tmp_path, 3)
    assert len(set(cluster.urls)) == 3
    row = await measure_setup("R3", cluster, sync_always=False, args=SMALL)
    assert row["replicas"] == 3
    assert row["crash_acked"] == SMALL.durability_trial
    assert row["crash_acked_while_down"] > 0  # the two others went on without the leader
    assert (row["crash_lost"], row["crash_duplicated"]) == (0, 0)
    assert all(node.process() is None for node in cluster.nodes)  # stopped afterwards


async def test_a_killed_single_server_keeps_every_acknowledged_append(tmp_path: Path) -> None:
    rows = [
        await measure_setup(
            "default", single_server(tmp_path / "d"), sync_always=False, args=SMALL
        ),
        await measure_setup(
            "always", single_server(tmp_path / "a", sync_always=True), sync_always=True, args=SMALL
        ),
    ]
    for row in rows:
        assert row["crash_acked"] == SMALL.durability_trial
        assert (row["crash_lost"], row["crash_duplicated"]) == (0, 0)
    assert rows[1]["power_loss_window_s"] == 0 < rows[0]["power_loss_window_s"] <= 120
    assert len(render(rows)) == 2
