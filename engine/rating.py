"""Rating math for the Elo rater: incremental Elo updates and full-history maximum-likelihood ratings.

Pure and deterministic: no I/O, no clock, no randomness. Ratings are on the Elo scale
(400 * log10 of a Bradley-Terry / Plackett-Luce strength).

Maximum-likelihood model (``ml_ratings``)
-----------------------------------------
* Every match is a Plackett-Luce ranking: the winner is chosen from all participants with
  probability ``exp(theta_w) / sum(exp(theta))``, then the runner-up from the rest, and so
  on. For two players this is exactly Bradley-Terry.
* Ties are split evenly: a match whose ranks contain ties counts as the average of the
  log-likelihoods of every strict ordering that breaks the ties, each with equal weight.
  For a two-player draw this is half a win for each side (the pairwise 0.5).
* Regularisation: a Gaussian prior centred at DEFAULT_RATING on every free rating, with
  precision ``regularization`` in natural-log units (default 1e-3, i.e. a standard deviation
  of about 13,700 Elo). It keeps undefeated and winless players finite and barely moves
  anyone with results on both sides (well under 0.05 Elo in the published 3-player case).
* Anchoring: participants named in ``anchors`` that appear in the data are fixed at their
  anchor values during the optimisation (they are not free parameters). With no anchor in
  the data the solution is shifted so the mean rating is DEFAULT_RATING.
* Intervals: the observed Fisher information (the Hessian of the penalised negative
  log-likelihood at the optimum, computed analytically). With anchors, the covariance is
  the inverse of the free block; without anchors it is the inverse projected onto
  sum-zero changes (ratings are only defined up to a shift). Normal approximation.
* Why not choix directly: its optimisers take neither per-observation weights (needed for
  ties) nor fixed parameters (needed for anchors), and they loop in Python. The likelihood
  here is the same one; the tests check our estimates against ``choix.opt_pairwise`` and
  ``choix.opt_rankings`` on tie-free data. The optimiser is scipy's trust-region Newton.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.stats import norm

DEFAULT_RATING = 1500.0
K_FACTOR = 32.0
PINNED_RATINGS: Mapping[str, float] = {"random": 400.0, "heuristic": 1200.0}
DEFAULT_REGULARIZATION = 1e-3

ELO_PER_NAT = 400.0 / math.log(10.0)


def expected_score(rating_a: float, rating_b: float) -> float:
    """Expected score of A against B under the logistic Elo model."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def _validate_ranks(ranks: Mapping[str, int]) -> None:
    if len(ranks) < 2:
        raise ValueError(f"a match needs at least 2 participants, got {dict(ranks)!r}")
    for name, rank in ranks.items():
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank of {name!r} must be an integer >= 1, got {dict(ranks)!r}")


def _pair_score(rank_a: int, rank_b: int) -> float:
    """Actual score of A in the virtual game A-B: 1 win, 0 loss, 0.5 tie (rank 1 = best)."""
    if rank_a == rank_b:
        return 0.5
    return 1.0 if rank_a < rank_b else 0.0


def elo_update(
    ratings: Mapping[str, float],
    ranks: Mapping[str, int],
    *,
    k: float = K_FACTOR,
    pinned: Mapping[str, float] = PINNED_RATINGS,
) -> dict[str, float]:
    """New ratings of every participant of one match.

    Two players: standard Elo. Three or four: every pair is a virtual game scored
    1 / 0 / 0.5, each pair's delta uses ``k / (N - 1)``, and all deltas come from the
    pre-match ratings and are summed. Missing participants start at DEFAULT_RATING;
    pinned participants are rated at their pin and never move.
    """
    _validate_ranks(ranks)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k!r}")
    before = {
        name: pinned[name] if name in pinned else float(ratings.get(name, DEFAULT_RATING))
        for name in ranks
    }
    pair_k = k / (len(ranks) - 1)
    delta = dict.fromkeys(ranks, 0.0)
    for a, b in itertools.combinations(ranks, 2):
        change = pair_k * (_pair_score(ranks[a], ranks[b]) - expected_score(before[a], before[b]))
        delta[a] += change
        delta[b] -= change
    return {name: before[name] if name in pinned else before[name] + delta[name] for name in ranks}


@dataclass(frozen=True)
class MLRating:
    """A maximum-likelihood rating with its normal-approximation interval and game count."""

    rating: float
    low: float
    high: float
    games: int


@dataclass(frozen=True)
class _Choices:
    """Top-1 choice events: ``winner`` picked from ``candidates`` (padded with -1), weighted."""

    winner: NDArray[np.int64]
    candidates: NDArray[np.int64]
    weight: NDArray[np.float64]


def _orderings(ranks: Mapping[str, int]) -> list[list[str]]:
    """Every strict best-to-worst ordering consistent with the ranks (ties broken all ways)."""
    groups = [
        [name for name in ranks if ranks[name] == rank] for rank in sorted(set(ranks.values()))
    ]
    per_group = [list(itertools.permutations(group)) for group in groups]
    return [[name for part in combo for name in part] for combo in itertools.product(*per_group)]


def _choices(matches: Sequence[Mapping[str, int]], index: Mapping[str, int]) -> _Choices:
    winners: list[int] = []
    candidates: list[list[int]] = []
    weights: list[float] = []
    width = max(len(match) for match in matches)
    for match in matches:
        orderings = _orderings(match)
        for ordering in orderings:
            ids = [index[name] for name in ordering]
            for position in range(len(ids) - 1):
                remaining = ids[position:]
                winners.append(ids[position])
                candidates.append(remaining + [-1] * (width - len(remaining)))
                weights.append(1.0 / len(orderings))
    return _Choices(
        winner=np.asarray(winners, dtype=np.int64),
        candidates=np.asarray(candidates, dtype=np.int64),
        weight=np.asarray(weights, dtype=np.float64),
    )


class _Likelihood:
    """Penalised negative log-likelihood of the choices with its gradient and Hessian."""

    def __init__(self, choices: _Choices, size: int, regularization: float) -> None:
        self.choices = choices
        self.size = size
        self.regularization = regularization
        self.valid = choices.candidates >= 0
        self.safe = np.where(self.valid, choices.candidates, 0)

    def _probabilities(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        logits = np.where(self.valid, theta[self.safe], -np.inf)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def objective(self, theta: NDArray[np.float64]) -> float:
        logits = np.where(self.valid, theta[self.safe], -np.inf)
        top = logits.max(axis=1)
        log_norm = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        nll = np.sum(self.choices.weight * (log_norm - theta[self.choices.winner]))
        return float(nll + 0.5 * self.regularization * np.sum(theta**2))

    def gradient(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        probabilities = self._probabilities(theta) * self.choices.weight[:, None]
        grad = self.regularization * theta
        np.add.at(grad, self.safe[self.valid], probabilities[self.valid])
        np.subtract.at(grad, self.choices.winner, self.choices.weight)
        return grad

    def hessian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        probabilities = self._probabilities(theta)
        weight = self.choices.weight[:, None, None]
        block = weight * (
            probabilities[:, :, None] * np.eye(probabilities.shape[1])[None]
            - probabilities[:, :, None] * probabilities[:, None, :]
        )
        pair_valid = self.valid[:, :, None] & self.valid[:, None, :]
        rows = np.broadcast_to(self.safe[:, :, None], block.shape)[pair_valid]
        cols = np.broadcast_to(self.safe[:, None, :], block.shape)[pair_valid]
        hess = self.regularization * np.eye(self.size)
        np.add.at(hess, (rows, cols), block[pair_valid])
        return hess


def _validate_matches(matches: Sequence[Mapping[str, int]], confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    for match in matches:
        _validate_ranks(match)


def _fit(
    likelihood: _Likelihood, fixed: NDArray[np.float64], free: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Minimise over the free parameters; ``fixed`` supplies the others."""

    def full(x: NDArray[np.float64]) -> NDArray[np.float64]:
        theta = fixed.copy()
        theta[free] = x
        return theta

    result = minimize(
        lambda x: likelihood.objective(full(x)),
        np.zeros(int(free.sum())),
        jac=lambda x: likelihood.gradient(full(x))[free],
        hess=lambda x: likelihood.hessian(full(x))[np.ix_(free, free)],
        method="trust-exact",
        options={"gtol": 1e-10, "maxiter": 500},
    )
    return full(result.x)


def _covariance(hessian: NDArray[np.float64], free: NDArray[np.bool_]) -> NDArray[np.float64]:
    size = len(free)
    covariance = np.zeros((size, size))
    if free.all():
        projection = np.eye(size) - np.full((size, size), 1.0 / size)
        covariance = projection @ np.linalg.inv(hessian) @ projection
    elif free.any():
        covariance[np.ix_(free, free)] = np.linalg.inv(hessian[np.ix_(free, free)])
    return covariance


def ml_ratings(
    matches: Sequence[Mapping[str, int]],
    *,
    anchors: Mapping[str, float] = PINNED_RATINGS,
    confidence: float = 0.95,
    regularization: float = DEFAULT_REGULARIZATION,
) -> dict[str, MLRating]:
    """Maximum-likelihood ratings from every match (participant -> rank, 1 = best).

    Bradley-Terry for two players, Plackett-Luce for more; see the module docstring for
    ties, regularisation, anchoring and the intervals.
    """
    _validate_matches(matches, confidence)
    if regularization <= 0:
        raise ValueError(f"regularization must be > 0, got {regularization!r}")
    if not matches:
        return {}
    names = sorted({name for match in matches for name in match})
    index = {name: i for i, name in enumerate(names)}
    free = np.array([name not in anchors for name in names])
    fixed = np.array(
        [(anchors[n] - DEFAULT_RATING) / ELO_PER_NAT if n in anchors else 0.0 for n in names]
    )
    likelihood = _Likelihood(_choices(matches, index), len(names), regularization)
    theta = _fit(likelihood, fixed, free)
    if free.all():
        theta -= theta.mean()
    covariance = _covariance(likelihood.hessian(theta), free)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    games = {name: sum(name in match for match in matches) for name in names}
    result: dict[str, MLRating] = {}
    for name, i in index.items():
        rating = float(anchors[name] if not free[i] else DEFAULT_RATING + ELO_PER_NAT * theta[i])
        half_width = z * ELO_PER_NAT * math.sqrt(max(float(covariance[i, i]), 0.0))
        result[name] = MLRating(rating, rating - half_width, rating + half_width, games[name])
    return result
