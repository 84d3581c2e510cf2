"""Selfplay's game child keeps one network: after a swap to B and back to A (a rollback), the
parent sends A's checkpoint again instead of assuming the child still holds it (it failed
with "selfplay child has no checkpoint" and the selfplay process died of it)."""

from __future__ import annotations

import asyncio
import hashlib
import io

import torch

from engine.config import GameConfig
from engine.encoding import network_spec
from engine.network import build_network, save_checkpoint
from events import ArtifactRef, Producer
from handlers.agents import search_settings
from handlers.models import ModelRef
from handlers.selfplay import ChildPlayer
from handlers.settings import LoopSettings

CONFIG = GameConfig("square8", 2)


def checkpoint(seed: int) -> tuple[bytes, ModelRef]:
    torch.manual_seed(seed)
    spec = network_spec(CONFIG, blocks=1, channels=8)
    buffer = io.BytesIO()
    save_checkpoint(build_network(spec), spec, buffer)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    artifact = ArtifactRef(bucket="ringloop-models", name=f"m{seed}", sha256=sha, size=len(data))
    return data, ModelRef(CONFIG.name, f"m{seed}", artifact, generation=seed)


def test_a_rollback_to_an_earlier_network_plays_it_again() -> None:
    loop = LoopSettings.profile(
        "tiny",
        selfplay={"inference": "local", "max_moves": 4, "simulations": 2, "games_per_task": 1},
    )
    search = search_settings(loop, "selfplay")
    (first, a), (second, b) = checkpoint(1), checkpoint(2)
    child = ChildPlayer()
    played = []
    try:
        for seed, (data, model) in enumerate([(first, a), (second, b), (first, a)]):
            records = asyncio.run(
                child.play(CONFIG, loop, search, seed, Producer.current("t"), model, data)
            )
            played.append({seat.model_sha256 for r in records for seat in r.seats})
    finally:
        child.close()
    sha_a, sha_b = a.artifact.sha256, b.artifact.sha256  # type: ignore[union-attr]
    assert played == [{sha_a}, {sha_b}, {sha_a}]
    assert child.sent == {sha_a}
