"""The trainer's sample cache: a packed game unpacks to equal samples sharing one buffer."""

from __future__ import annotations

import tracemalloc

import numpy as np

from engine.training import Sample
from handlers.trainer import pack_samples, unpack_samples


def test_unpacked_samples_are_equal_and_share_their_arrays() -> None:
    rng = np.random.default_rng(0)
    samples = [
        Sample(
            rng.random((31, 8, 8), dtype=np.float32),
            (np.array([i, i + 1]), np.array([0.25, 0.75], dtype=np.float32)),
            np.array([1.0, -1.0], dtype=np.float32),
            np.ones(5449, dtype=bool),
        )
        for i in range(50)
    ]
    packed = pack_samples(samples)
    tracemalloc.start()
    out = unpack_samples(packed)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(out) == len(samples)
    for got, want in zip(out, samples, strict=True):
        assert np.array_equal(got.planes, want.planes) and np.array_equal(got.value, want.value)
        assert np.array_equal(got.policy[0], want.policy[0])
        assert np.array_equal(got.policy[1], want.policy[1])
        assert np.array_equal(got.legal_mask, want.legal_mask)
    # Each field is decompressed once, not once per sample: the samples hold about their
    # own size (reading the archive per sample held len(samples) full copies).
    own = sum(s.planes.nbytes + s.legal_mask.nbytes for s in samples)
    assert held < 4 * own, (held, own)
    assert unpack_samples(pack_samples([])) == []
