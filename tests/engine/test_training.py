"""Tests for engine.training: loss falls on a fixed batch, soft targets, one-hot refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.network import NetworkSpec, build_network
from engine.training import (
    OneHotTargetError,
    Sample,
    evaluate_loss,
    policy_target,
    train,
)

SPEC = NetworkSpec(
    "square8_2p",
    in_planes=4,
    height=8,
    width=8,
    policy_size=32,
    num_players=2,
    blocks=1,
    channels=8,
)


def _samples(count: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        planes = rng.standard_normal((4, 8, 8)).astype(np.float32)
        best = int(planes[0].sum() > 0)  # a learnable signal: the sign of plane 0
        visits = {best: 30, 2 + best: 10, 10: 5}
        value = [1.0, -1.0] if best else [-1.0, 1.0]
        mask = np.zeros(32, dtype=bool)
        mask[[0, 1, 2, 3, 10, 11]] = True
        samples.append(Sample.from_search(planes, visits, value, legal_mask=mask))
    return samples


def test_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = build_network(SPEC)
    samples = _samples(64)
    before = evaluate_loss(model, samples)
    report = train(model, samples, epochs=30, batch_size=32, lr=3e-3, device="cpu", seed=1)
    after = evaluate_loss(model, samples)
    assert report.epochs[-1].total < report.epochs[0].total
    assert after.total < 0.7 * before.total
    assert report.samples_seen == 30 * 64 and report.seconds > 0
    assert report.samples_per_second == pytest.approx(report.samples_seen / report.seconds)
    assert report.device == "cpu" and report.amp is False


def test_policy_loss_is_cross_entropy_against_the_visit_distribution() -> None:
    model = build_network(SPEC)
    with torch.no_grad():  # make the network output uniform logits and zero values
        for p in model.policy_head[-1].parameters():
            p.zero_()
    sample = _samples(1)[0]
    loss = evaluate_loss(model, [sample])
    # Uniform over the 6 legal moves: cross-entropy = log(6) whatever the target.
    assert loss.policy == pytest.approx(np.log(6), abs=1e-5)


def test_training_is_reproducible_with_a_seed() -> None:
    reports = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_network(SPEC)
        reports.append(train(model, _samples(16), epochs=2, batch_size=8, device="cpu", seed=5))
    assert reports[0].epochs == reports[1].epochs


def test_one_hot_target_refused_when_visits_exist() -> None:
    planes = np.zeros((4, 8, 8), dtype=np.float32)
    visits = {3: 40, 5: 10}
    with pytest.raises(OneHotTargetError, match="visit distribution"):
        Sample(planes, policy_target(played=3), [0.0, 0.0], visits=visits)
    soft = Sample(planes, policy_target(played=3, visits=visits), [0.0, 0.0], visits=visits)
    assert soft.policy[1] == pytest.approx([0.8, 0.2])
    # One-hot is fine when the move was not searched (e.g. a heuristic game).
    assert len(Sample(planes, policy_target(played=3), [0.0, 0.0]).policy[0]) == 1


def test_sample_validation() -> None:
    planes = np.zeros((4, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="no visits"):
        policy_target(played=7, visits={1: 3})
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        Sample(planes, policy_target(played=1), [2.0, 0.0])
    mask = np.zeros(32, dtype=bool)
    with pytest.raises(ValueError, match="illegal"):
        Sample(planes, policy_target(played=1), [0.0, 0.0], legal_mask=mask)
    with pytest.raises(ValueError, match="at least one sample"):
        train(build_network(SPEC), [], device="cpu")
