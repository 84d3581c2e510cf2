"""The autouse ERROR-log guard of tests/conftest.py fails a test, before and after
`ops.logging.configure_logging` replaces structlog's processors."""

from __future__ import annotations

import pytest

from tests.conftest import repo_root

pytest_plugins = ["pytester"]

INNER_TESTS = """
import pytest
import structlog

from ops.logging import configure_logging


def test_error_logged_directly():
    structlog.get_logger().error("boom_direct")


def test_error_logged_after_configure_logging():
    configure_logging("warning")
    structlog.get_logger().error("boom_after_configure")


def test_info_after_configure_logging_is_fine():
    configure_logging("info")
    structlog.get_logger().info("just_info")


@pytest.mark.allow_error_logs
def test_error_allowed_by_marker():
    configure_logging("warning")
    structlog.get_logger().error("boom_allowed")
"""


def test_error_log_guard_fails_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((repo_root() / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert result.ret != 0
    assert outcomes.get("passed") == 4, outcomes  # the calls themselves pass ...
    assert outcomes.get("errors") == 2, outcomes  # ... and the guard fails two at teardown
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_error_logged_directly*",
            "*ERROR at teardown of test_error_logged_after_configure_logging*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_info_after*")
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_error_allowed*")
