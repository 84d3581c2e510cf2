"""Tests for engine.stats: Wilson intervals and the GSPRT against hand-computed figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.stats import sprt, sprt_bounds, sprt_llr, wilson_interval


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.49016, 0.94332), abs=1e-5)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.27753, abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_narrows_with_games_and_accepts_half_wins() -> None:
    small = wilson_interval(55, 100)
    large = wilson_interval(550, 1000)
    assert large[1] - large[0] < small[1] - small[0]
    low, high = wilson_interval(5.5, 10)
    assert low < 0.55 < high


@pytest.mark.parametrize("wins,games", [(11, 10), (-1, 10), (0, -1)])
def test_wilson_interval_rejects_impossible_counts(wins: int, games: int) -> None:
    with pytest.raises(ValueError, match=f"wins={wins}"):
        wilson_interval(wins, games)


def test_bounds_are_walds() -> None:
    lower, upper = sprt_bounds(0.05, 0.05)
    assert upper == pytest.approx(math.log(19)) and lower == pytest.approx(-math.log(19))


def test_llr_hand_computed() -> None:
    # s = 0.7; regularised counts 60.5/20.5/20.5; var = 16.31 / 101.5; s1 = 1/(1+10^(-1/40))
    s1 = 1 / (1 + 10 ** (-10 / 400))
    variance = (60.5 * 0.09 + 20.5 * 0.04 + 20.5 * 0.49) / 101.5
    expected = 100 * (s1 - 0.5) * (1.4 - 0.5 - s1) / (2 * variance)
    assert sprt_llr(60, 20, 20, 0.0, 10.0) == pytest.approx(expected)
    assert expected == pytest.approx(1.7263, abs=1e-4)


def test_decisions() -> None:
    assert sprt(300, 100, 100).decision == "accept"
    assert sprt(100, 100, 300).decision == "reject"
    assert sprt(50, 0, 50).decision == "continue"
    assert sprt(0, 0, 0) == sprt(0, 0, 0).__class__("continue", 0.0, *sprt_bounds(0.05, 0.05))
    # A short perfect run does not decide by itself (pseudo-counts keep the variance > 0).
    assert sprt(3, 0, 0).decision == "continue"


def test_sprt_error_rates_in_simulation() -> None:
    """Under a true elo of elo1 the test mostly accepts, under elo0 mostly rejects."""
    rng = np.random.default_rng(3)

    def run(true_elo: float) -> str:
        p_win = 1 / (1 + 10 ** (-true_elo / 400)) - 0.1
        w = d = lo = 0
        while True:
            u = rng.random()
            w, d, lo = (
                (w + 1, d, lo)
                if u < p_win
                else (w, d + 1, lo)
                if u < p_win + 0.2
                else (w, d, lo + 1)
            )
            result = sprt(w, d, lo, elo0=0, elo1=100)
            if result.decision != "continue":
                return result.decision

    accepts = sum(run(100.0) == "accept" for _ in range(40))
    rejects = sum(run(0.0) == "reject" for _ in range(40))
    assert accepts >= 34 and rejects >= 34


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="elo1 > elo0"):
        sprt(1, 1, 1, elo0=5, elo1=5)
    with pytest.raises(ValueError, match="alpha"):
        sprt(1, 1, 1, alpha=0.0)
    with pytest.raises(ValueError, match="L=-1"):
        sprt(1, 1, -1)
