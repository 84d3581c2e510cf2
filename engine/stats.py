"""Statistics for the promotion gates: Wilson score intervals and a sequential probability ratio test.

The SPRT is the generalised SPRT (GSPRT) used by chess engine testing frameworks: the
log-likelihood ratio of H1 (elo = elo1) against H0 (elo = elo0) under a normal
approximation of the per-game score (win 1, draw 0.5, loss 0), with the variance
estimated from the observed trinomial results:

    LLR = N * (s1 - s0) * (2 * s - s0 - s1) / (2 * var)

where s is the mean score, s0/s1 the expected scores at elo0/elo1 and var the per-game
score variance. To keep a short all-win or all-draw run from giving an infinite LLR, the
variance is computed from the counts with half a pseudo-game added to each outcome
(Jeffreys-style); the score itself is the observed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy.stats import norm

from engine.rating import expected_score

Decision = Literal["accept", "reject", "continue"]

PSEUDO_COUNT = 0.5


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(wins: float, games: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a win rate; draws may be counted as half wins."""
    if games < 0 or wins < 0 or wins > games:
        raise ValueError(f"need 0 <= wins <= games, got wins={wins!r}, games={games!r}")
    z = _z(confidence)
    if games == 0:
        return 0.0, 1.0
    p = wins / games
    denominator = 1.0 + z * z / games
    centre = (p + z * z / (2 * games)) / denominator
    half = z * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class SPRTResult:
    """The decision so far, the log-likelihood ratio and the stopping bounds."""

    decision: Decision
    llr: float
    lower: float
    upper: float


def sprt_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's stopping bounds (lower, upper) on the LLR for error rates alpha and beta."""
    if not (0.0 < alpha < 0.5 and 0.0 < beta < 0.5):
        raise ValueError(f"alpha and beta must be in (0, 0.5), got {alpha!r}, {beta!r}")
    return math.log(beta / (1.0 - alpha)), math.log((1.0 - beta) / alpha)


def _score_variance(wins: int, draws: int, losses: int, score: float) -> float:
    w, d, lo = (count + PSEUDO_COUNT for count in (wins, draws, losses))
    total = w + d + lo
    return (w * (1 - score) ** 2 + d * (0.5 - score) ** 2 + lo * score**2) / total


def sprt_llr(wins: int, draws: int, losses: int, elo0: float, elo1: float) -> float:
    """Log-likelihood ratio of elo1 against elo0 for the given results (normal approximation)."""
    games = wins + draws + losses
    if games == 0:
        return 0.0
    score = (wins + 0.5 * draws) / games
    s0, s1 = expected_score(elo0, 0.0), expected_score(elo1, 0.0)
    variance = _score_variance(wins, draws, losses, score)
    return games * (s1 - s0) * (2 * score - s0 - s1) / (2 * variance)


def sprt(
    wins: int,
    draws: int,
    losses: int,
    *,
    elo0: float = 0.0,
    elo1: float = 10.0,
    alpha: float = 0.05,
    beta: float = 0.05,
) -> SPRTResult:
    """Decide H1 (elo >= elo1: "accept") against H0 (elo <= elo0: "reject") or "continue"."""
    if min(wins, draws, losses) < 0:
        raise ValueError(f"counts must be >= 0, got W={wins!r} D={draws!r} L={losses!r}")
    if not elo1 > elo0:
        raise ValueError(f"need elo1 > elo0, got elo0={elo0!r}, elo1={elo1!r}")
    lower, upper = sprt_bounds(alpha, beta)
    llr = sprt_llr(wins, draws, losses, elo0, elo1)
    decision: Decision = "continue"
    if llr >= upper:
        decision = "accept"
    elif llr <= lower:
        decision = "reject"
    return SPRTResult(decision, llr, lower, upper)
