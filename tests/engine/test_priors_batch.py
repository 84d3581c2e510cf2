"""engine.encoding.batch_legal_priors against the one-state definition: on states along
random games of every config, the batched priors equal ``move_priors`` of the softmax over
the legal slots, state by state, shared and multi-slot moves (recovery-slide variants,
territory regions) included."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import ALL_CONFIGS, GameConfig
from engine.encoding import (
    batch_legal_priors,
    layout,
    legal_policy_mask,
    legal_priors,
    move_indices,
    move_priors,
)
from tests.engine.test_encoding_planes import sampled_states


def reference(state, moves, logits: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    mask = legal_policy_mask(state, moves)
    row = np.where(mask, logits.astype(np.float64), -np.inf)
    probabilities = np.exp(row - row[mask].max())
    return move_priors(state, moves, probabilities / probabilities.sum())


def shares_or_spans(state, moves) -> bool:  # type: ignore[no-untyped-def]
    slots = [move_indices(state, m) for m in moves]
    flat = [i for indices in slots for i in indices]
    return any(len(indices) > 1 for indices in slots) or len(set(flat)) != len(flat)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: c.name)
def test_batched_priors_equal_the_one_state_definition(config: GameConfig) -> None:
    small = config.board in ("square8", "hex8")
    states = sampled_states(config, seed=11, count=300 if small else 40)
    moves = [s.legal_moves() for s in states]
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=3.0, size=(len(states), layout(config).policy_size))
    logits = logits.astype(np.float32)
    batched = batch_legal_priors(config, moves, logits)
    assert len(batched) == len(states)
    for k, (state, legal) in enumerate(zip(states, moves, strict=True)):
        expected = reference(state, legal, logits[k])
        assert batched[k].shape == (len(legal),)
        np.testing.assert_allclose(batched[k], expected, rtol=1e-9, atol=1e-12, err_msg=str(k))
        np.testing.assert_allclose(legal_priors(state, legal, logits[k]), expected, rtol=1e-9)


def test_the_sample_holds_moves_that_share_or_span_slots() -> None:
    """The slow path is exercised: square8 3p's random games reach recovery slides or
    territory choices (several moves on one slot, one move on several)."""
    states = sampled_states(GameConfig("square8", 3), seed=11, count=300)
    assert any(shares_or_spans(s, s.legal_moves()) for s in states)


def test_a_state_without_moves_gets_empty_priors() -> None:
    config = GameConfig("square8", 2)
    state = sampled_states(config, seed=1, count=1)[0]
    logits = np.zeros((2, layout(config).policy_size), dtype=np.float32)
    out = batch_legal_priors(config, [[], state.legal_moves()], logits)
    assert out[0].shape == (0,)
    assert out[1].sum() == pytest.approx(1.0)
