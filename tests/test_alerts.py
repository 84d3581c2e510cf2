"""The alert rules: valid (`promtool check rules`), behaving as their unit tests say
(`promtool test rules`), and reading only metrics that ops.metrics exports.

promtool comes from Debian's prometheus package; with CI set, a missing promtool fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import ops
from ops.metrics import METRICS

ALERTS = Path(ops.__file__).parent / "alerts"
RULES = ALERTS / "ringloop.rules.yml"
RULE_TESTS = ALERTS / "ringloop.rules.test.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI requires promtool (apt-get install -y prometheus)")
        pytest.skip("promtool not installed (apt-get install -y prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=ALERTS, capture_output=True, text=True, timeout=120
    )


def test_rules_are_valid() -> None:
    result = run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_rules_fire_as_their_unit_tests_say() -> None:
    result = run("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_read_only_exported_metrics() -> None:
    used = set(re.findall(r"\bringloop_[a-z_]+", RULES.read_text()))
    assert used, "the rules read ringloop metrics"
    assert used <= set(METRICS), used - set(METRICS)


def test_rules_fail_their_unit_tests_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests can fail: a rule file with the stuck-lease threshold doubled fails them."""
    tool = promtool()
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace("ringloop_lease_held_seconds{kind!=\"loop\"} > 2 * 3600",
                                  "ringloop_lease_held_seconds{kind!=\"loop\"} > 4 * 3600")
    )  # fmt: skip
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = subprocess.run([tool, "test", "rules", RULE_TESTS.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode != 0 and "RingloopLeaseStuck" in result.stdout + result.stderr
