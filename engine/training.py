"""The training step the trainer runs: soft-target policy cross-entropy plus per-seat value MSE.

Policy targets are the search's visit distribution (soft). A one-hot target is accepted
only for a move that was played without search; ``Sample`` refuses a one-hot target when
a visit distribution exists for the move (RingRift once trained on the played move while
the visit counts were at hand, throwing away what the search knew).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional

from engine.network import PolicyValueNet, select_device

SparsePolicy = tuple[NDArray[np.int64], NDArray[np.float32]]
Augment = Callable[["Sample", np.random.Generator], "Sample"]


class OneHotTargetError(ValueError):
    """A one-hot policy target was given for a move that has a search visit distribution."""


def sparse_policy(distribution: Mapping[int, float]) -> SparsePolicy:
    """A normalised sparse distribution from index -> weight (e.g. visit counts)."""
    items = sorted((int(i), float(w)) for i, w in distribution.items() if w > 0)
    if not items:
        raise ValueError(f"a policy target needs positive mass, got {dict(distribution)!r}")
    indices = np.array([i for i, _ in items], dtype=np.int64)
    weights = np.array([w for _, w in items], dtype=np.float32)
    return indices, weights / weights.sum()


def policy_target(
    played: int | None = None, visits: Mapping[int, float] | None = None
) -> SparsePolicy:
    """The training target for one move: its visit distribution when searched, else one-hot."""
    if visits:
        target = sparse_policy(visits)
        if played is not None and played not in set(target[0].tolist()):
            raise ValueError(f"played move {played} has no visits in {dict(visits)!r}")
        return target
    if played is None:
        raise ValueError("a policy target needs a played move or a visit distribution")
    return np.array([played], dtype=np.int64), np.ones(1, dtype=np.float32)


def _as_sparse(policy: SparsePolicy | NDArray[np.floating]) -> SparsePolicy:
    if isinstance(policy, tuple):
        indices, weights = (np.asarray(policy[0], np.int64), np.asarray(policy[1], np.float32))
    else:
        dense = np.asarray(policy, dtype=np.float32)
        indices = np.flatnonzero(dense).astype(np.int64)
        weights = dense[indices]
    total = float(weights.sum())
    if indices.shape != weights.shape or total <= 0 or (weights < 0).any():
        raise ValueError(f"bad policy target: indices {indices!r}, weights {weights!r}")
    return indices, weights / total


@dataclass(frozen=True)
class Sample:
    """One training position: input planes, policy target, value target per seat.

    ``policy`` is dense (policy_size,) or sparse (indices, weights); it is stored sparse
    and normalised. ``visits`` is the search's visit distribution for the move, when the
    move was searched; a one-hot ``policy`` alongside a multi-move ``visits`` is refused.
    ``legal_mask`` (bool, policy_size) optionally masks the logits before the softmax.
    Values are in seat order relative to the player to move, each in [-1, 1].
    """

    planes: NDArray[np.float32]
    policy: SparsePolicy
    value: NDArray[np.float32]
    legal_mask: NDArray[np.bool_] | None = None
    visits: Mapping[int, float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "planes", np.asarray(self.planes, dtype=np.float32))
        object.__setattr__(self, "policy", _as_sparse(self.policy))
        object.__setattr__(self, "value", np.asarray(self.value, dtype=np.float32))
        if self.planes.ndim != 3:
            raise ValueError(f"planes must be (C, H, W), got shape {self.planes.shape}")
        if np.abs(self.value).max(initial=0.0) > 1.0:
            raise ValueError(f"value targets must lie in [-1, 1], got {self.value!r}")
        check_policy_target(self.policy, self.visits)
        if self.legal_mask is not None and not self.legal_mask[self.policy[0]].all():
            raise ValueError(f"policy target puts mass on illegal moves {self.policy[0]!r}")

    @classmethod
    def from_search(
        cls,
        planes: NDArray[np.float32],
        visits: Mapping[int, float],
        value: Sequence[float] | NDArray[np.float32],
        legal_mask: NDArray[np.bool_] | None = None,
    ) -> Sample:
        """A sample whose policy target is the search's visit distribution."""
        return cls(planes, policy_target(visits=visits), np.asarray(value), legal_mask, visits)


def check_policy_target(policy: SparsePolicy, visits: Mapping[int, float] | None) -> None:
    """Raise OneHotTargetError if ``policy`` is one-hot while ``visits`` covers several moves."""
    visited = [i for i, count in (visits or {}).items() if count > 0]
    if len(policy[0]) == 1 and len(visited) > 1:
        raise OneHotTargetError(
            f"one-hot policy target on index {int(policy[0][0])} although the search visited "
            f"{len(visited)} moves {dict(visits or {})!r}; train on the visit distribution"
        )


@dataclass(frozen=True)
class EpochLoss:
    policy: float
    value: float

    @property
    def total(self) -> float:
        return self.policy + self.value


@dataclass(frozen=True)
class TrainingReport:
    """Losses per epoch, throughput and where it ran."""

    epochs: list[EpochLoss]
    samples_seen: int
    seconds: float
    device: str
    amp: bool

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Batch:
    planes: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    mask: torch.Tensor | None


def _collate(samples: Sequence[Sample], policy_size: int, device: torch.device) -> _Batch:
    planes = torch.from_numpy(np.stack([s.planes for s in samples]))
    value = torch.from_numpy(np.stack([s.value for s in samples]))
    policy = torch.zeros(len(samples), policy_size)
    for row, sample in enumerate(samples):
        policy[row, torch.from_numpy(sample.policy[0])] = torch.from_numpy(sample.policy[1])
    mask = None
    if all(s.legal_mask is not None for s in samples):
        mask = torch.from_numpy(np.stack([s.legal_mask for s in samples])).to(device)  # type: ignore[misc]
    return _Batch(planes.to(device), policy.to(device), value.to(device), mask)


def losses(model: PolicyValueNet, batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(policy soft cross-entropy, value MSE averaged over seats) for one batch."""
    logits, values = model(batch.planes)
    logits = logits.float()
    if batch.mask is not None:
        logits = logits.masked_fill(~batch.mask, -1e9)
    policy_loss = -(batch.policy * functional.log_softmax(logits, dim=1)).sum(dim=1).mean()
    value_loss = functional.mse_loss(values.float(), batch.value)
    return policy_loss, value_loss


def _bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[None]:
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if _bf16(device) else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _batches(
    samples: Sequence[Sample], batch_size: int, rng: np.random.Generator, augment: Augment | None
) -> Iterator[list[Sample]]:
    order = rng.permutation(len(samples))
    for start in range(0, len(order), batch_size):
        chosen = [samples[i] for i in order[start : start + batch_size]]
        yield [augment(s, rng) for s in chosen] if augment else chosen


def _validate(samples: Sequence[Sample], epochs: int, batch_size: int, lr: float) -> None:
    if not samples:
        raise ValueError("train needs at least one sample")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs>=1, batch_size>=1, lr>0; got {epochs}, {batch_size}, {lr}")


def train(
    model: PolicyValueNet,
    samples: Sequence[Sample],
    *,
    epochs: int = 1,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    device: torch.device | str | None = None,
    seed: int | np.random.Generator | random.Random = 0,
    amp: bool | None = None,
    augment: Augment | None = None,
) -> TrainingReport:
    """Fit ``model`` in place with AdamW; AMP (bf16, else fp16 with a scaler) on CUDA by default."""
    _validate(samples, epochs, batch_size, lr)
    device = torch.device(device) if device is not None else select_device()
    use_amp = (device.type == "cuda") if amp is None else (amp and device.type == "cuda")
    rng = _generator(seed)
    torch.manual_seed(int(rng.integers(2**31)))  # dropout-free net; seeds any torch-side sampling
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not _bf16(device))
    history: list[EpochLoss] = []
    started = time.perf_counter()
    for _ in range(epochs):
        history.append(_epoch(model, samples, batch_size, rng, augment, optimizer, scaler, use_amp))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    model.eval()
    return TrainingReport(history, epochs * len(samples), seconds, str(device), use_amp)


def _generator(seed: int | np.random.Generator | random.Random) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, random.Random):
        return np.random.default_rng(seed.getrandbits(64))
    return np.random.default_rng(seed)


def _epoch(
    model: PolicyValueNet,
    samples: Sequence[Sample],
    batch_size: int,
    rng: np.random.Generator,
    augment: Augment | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    use_amp: bool,
) -> EpochLoss:
    device = next(model.parameters()).device
    policy_sum = value_sum = 0.0
    for chosen in _batches(samples, batch_size, rng, augment):
        batch = _collate(chosen, model.spec.policy_size, device)
        with _autocast(device, use_amp):
            policy_loss, value_loss = losses(model, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(policy_loss + value_loss).backward()
        scaler.step(optimizer)
        scaler.update()
        policy_sum += policy_loss.item() * len(chosen)
        value_sum += value_loss.item() * len(chosen)
    return EpochLoss(policy_sum / len(samples), value_sum / len(samples))


def evaluate_loss(
    model: PolicyValueNet, samples: Sequence[Sample], *, batch_size: int = 256
) -> EpochLoss:
    """Mean losses over ``samples`` without training (eval mode, no gradients)."""
    device = next(model.parameters()).device
    model.eval()
    policy_sum = value_sum = 0.0
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            chosen = samples[start : start + batch_size]
            policy_loss, value_loss = losses(
                model, _collate(chosen, model.spec.policy_size, device)
            )
            policy_sum += policy_loss.item() * len(chosen)
            value_sum += value_loss.item() * len(chosen)
    return EpochLoss(policy_sum / len(samples), value_sum / len(samples))


def transformed(
    sample: Sample,
    planes: NDArray[np.float32],
    policy: SparsePolicy,
    legal_mask: NDArray[np.bool_] | None,
) -> Sample:
    """A copy of ``sample`` with moved planes, policy and mask (symmetry augmentation)."""
    return replace(sample, planes=planes, policy=policy, legal_mask=legal_mask, visits=None)
