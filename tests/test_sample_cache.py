"""The trainer's samples: value targets blend the search's root value; the cache keys on the
blend; a packed game unpacks to equal samples sharing one buffer."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from engine import GameConfig, GameState
from engine.training import Sample
from events import GameCompleted, SeatAssignment
from handlers.samples import SampleCache, game_samples, pack_samples, unpack_samples


def three_move_game() -> GameCompleted:
    """Player 1 places and moves the placed stack, player 2 places; all searched, with root
    values (player 1's view first) on the first and third moves; player 1 won."""
    state = GameState.initial(GameConfig.parse("square8_2p"))
    moves: list[str] = []
    visits: list[dict[str, int]] = []
    root_values: list[list[float] | None] = []
    searched = iter([[0.125, -0.125], None, [0.25, -0.25]])
    while len([v for v in visits if v]) < 3:
        options = state.legal_moves()
        forced = len(options) == 1  # bookkeeping moves (no line, no territory) are not searched
        moves.append(options[0].to_notation())
        visits.append({} if forced else {m.to_notation(): 8 for m in options[:2]})
        root_values.append(None if forced else next(searched))
        state.apply(options[0])
    return GameCompleted(
        config="square8_2p",
        purpose="selfplay",
        game_id="g-blend",
        seats=[
            SeatAssignment(seat=1, participant_id="m-1"),
            SeatAssignment(seat=2, participant_id="m-1"),
        ],
        winner=1,
        ranking=[1, 2],
        moves=moves,
        visits=visits,
        root_values=root_values,
    )


def test_value_targets_blend_the_result_with_the_search_root_value() -> None:
    record = three_move_game()
    results_only = game_samples(record, 0.0)  # values in seat order from the mover
    assert [s.value.tolist() for s in results_only] == [[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]
    blended = game_samples(record, 0.5)
    assert blended[0].value.tolist() == pytest.approx([0.5625, -0.5625])  # .5 * 1 + .5 * .125
    assert blended[1].value.tolist() == [1.0, -1.0]  # no root value recorded
    assert blended[2].value.tolist() == pytest.approx([-0.625, 0.625])  # player 2 to move
    assert game_samples(record, 1.0)[2].value.tolist() == pytest.approx([-0.25, 0.25])
    without = record.model_copy(update={"root_values": None})
    assert [s.value.tolist() for s in game_samples(without, 0.5)] == [
        s.value.tolist() for s in results_only
    ]
    with pytest.raises(ValueError, match="search_weight must lie in \\[0, 1\\], got 1.5"):
        game_samples(record, 1.5)


def test_the_cache_keeps_samples_per_value_blend(tmp_path: Path) -> None:
    record = three_move_game()
    half = SampleCache(tmp_path / "samples.db", 0.5)
    half.put("RINGLOOP_GAMES", 7, 1, game_samples(record, 0.5))
    cached = half.get("RINGLOOP_GAMES", 7)
    assert cached is not None and cached[0] == 1
    assert cached[1][0].value.tolist() == pytest.approx([0.5625, -0.5625])
    half.close()
    results_only = SampleCache(tmp_path / "samples.db", 0.0)
    assert results_only.get("RINGLOOP_GAMES", 7) is None  # built with another blend
    results_only.close()


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
