"""The learning benchmark's verdicts on its own table: what "each promoted generation beat
its parent" means when a generation was judged on games against some other model."""

from __future__ import annotations

from typing import Any

from ops.bench.learning import _ml_table, _pct, each_beat_parent, rising, steps_up


def generation(
    number: int, gate: float | None, *, rating: float | None = None, rolled_back: bool = False
) -> dict[str, Any]:
    return {"model": f"g{number}", "generation": number, "rating": rating or 1000.0 + number,
            "low": 900.0, "high": 1100.0, "games": 40, "gate_vs_parent": gate,
            "rolled_back": rolled_back}  # fmt: skip


def test_every_generation_after_the_first_needs_a_won_gate_against_its_parent() -> None:
    assert each_beat_parent([generation(1, None), generation(2, 0.8), generation(3, 0.575)])
    assert not each_beat_parent([generation(1, None), generation(2, 0.8), generation(3, 0.5)])
    # generation 3 promoted over 2 on games against a model rolled back mid-gate: not shown
    assert not each_beat_parent([generation(1, None), generation(2, 0.8), generation(3, None)])


def test_the_table_says_which_generation_had_no_gate_against_its_parent() -> None:
    lines = _ml_table([generation(1, None), generation(2, 0.6), generation(3, None)])
    assert "gate vs parent" not in lines[1] and "no gate games" not in lines[1]
    assert lines[2].endswith("gate vs parent 60%")
    assert lines[3].endswith("no gate games against its parent")


def test_win_rates_are_printed_unrounded() -> None:
    assert (_pct(0.9875), _pct(0.95), _pct(1.0), _pct(None)) == ("98.75%", "95%", "100%", "n/a")


def test_rising_is_strict_and_the_table_marks_rolled_back_generations() -> None:
    rows = [
        generation(1, None, rating=1300.0),
        generation(2, 0.6, rating=1250.0, rolled_back=True),
        generation(3, 0.7, rating=1400.0),
    ]
    assert not rising(rows) and steps_up(rows) == 1
    assert rising([r for r in rows if not r["rolled_back"]])
    assert rising(rows[:1]) and rising([])
    assert not rising([generation(1, None, rating=1300.0), generation(2, 0.6, rating=1300.0)])
    lines = _ml_table(rows)
    assert lines[2].endswith("gate vs parent 60%  (rolled back)")
    assert "rolled back" not in lines[3]
