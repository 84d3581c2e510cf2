"""The allocator settings of processes that run networks: applied on glibc, harmless twice."""

from __future__ import annotations

import ctypes
import sys

import pytest

from handlers.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux's")
def test_glibc_takes_both_thresholds_and_takes_them_again() -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018 - only whether glibc is there
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # every entry point may call it
