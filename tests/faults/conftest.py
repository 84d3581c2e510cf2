"""The fault suite's fixtures: a loopback JetStream cluster, and the long tests (`slow`) left
out unless asked for with `-m slow` (one command: `pytest -m slow tests/faults`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.cluster import LoopbackCluster


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return  # the caller chose (e.g. -m slow)
    here = str(config.rootpath / "tests" / "faults")
    deselected = [
        item
        for item in items
        if str(item.path).startswith(here) and item.get_closest_marker("slow") is not None
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """A 3-node JetStream cluster on 127.0.0.1, its stores in a fresh folder."""
    nodes = LoopbackCluster.create(tmp_path_factory.mktemp("cluster"), 3)
    nodes.start()
    yield nodes
    nodes.stop()
