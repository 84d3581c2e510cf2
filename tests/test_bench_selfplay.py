"""`ringloop bench selfplay`: one run prints its figures and ends with one JSON line; bad input
is a one-line error quoting it."""

from __future__ import annotations

import json

import pytest

from ops.cli import main


def test_bench_selfplay_reports_ratio_and_shares(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "selfplay", "--profile", "tiny", "--games", "3", "--parallel", "2"]
    assert main([*argv, "--search", "gumbel", "--max-moves", "30", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["search"] == "gumbel" and report["games"] == 3 and report["max_moves"] == 30
    assert report["moves"] <= 3 * 30
    assert report["selfplay_evals_per_s"] > 0 and report["raw_evals_per_s"] > 0
    expected = report["selfplay_evals_per_s"] / report["raw_evals_per_s"]
    assert report["eval_ratio"] == pytest.approx(expected, abs=1e-3)
    assert report["games_per_s"] > 0 and report["lockstep_eval_ratio"] > 0
    assert sum(report["shares"].values()) == pytest.approx(1.0, abs=0.02)


def test_bench_selfplay_compares_shared_inference(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "selfplay", "--profile", "tiny", "--games", "2", "--parallel", "2"]
    assert main([*argv, "--inference", "shared", "--workers", "2", "--no-baseline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["workers"] == 2 and report["service_batches"] > 0
    assert report["local_workers_evals_per_s"] > 0 and report["shared_evals_per_s"] > 0
    expected = report["shared_evals_per_s"] / report["local_workers_evals_per_s"]
    assert report["shared_ratio"] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("argv", "quoted"),
    [
        (["--workers", "0"], "0"),
        (["--parallel", "0"], "--parallel must be >= 1, got 0"),
        (["--max-moves", "0"], "--max-moves must be >= 1, got 0"),
        (["--config", "square9_2p"], "'square9_2p'"),
        (["--device", "nodevice"], "'nodevice'"),
        (["--profile", "huge"], "'huge'"),
    ],
)
def test_bench_selfplay_bad_input_is_one_line(
    argv: list[str], quoted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "selfplay", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert quoted in err and len(err.splitlines()) == 1 and "Traceback" not in err
