"""Which bus errors pass on their own (a leader election, a reconnect), and retrying them.

Shared by the handler runtime, the projection runner, leases and setup: a lost node or an
election in a JetStream cluster answers 503 / "no responders" / timeouts for a few seconds,
and none of that may end a process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import structlog
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

log = structlog.get_logger(__name__)

T = TypeVar("T")

BACKOFF_S = (0.2, 5.0)  # first and largest wait between two tries
SETUP_DEADLINE_S = 60.0  # how long setup and start-up calls keep trying before giving up
CALL_DEADLINE_S = 120.0  # how long one append or read keeps trying before its error is raised

# JetStream error codes that mean "not now": the cluster is unavailable (10008), cannot
# handle the request yet (10009), the stream has no assignment yet (10076) or is offline
# while its peers elect (10118).
TRANSIENT_ERR_CODES = frozenset({10008, 10009, 10076, 10118})
# "No suitable peers for placement" (10005) is transient only while a peer is offline (a node
# restarting, or one the meta leader briefly lost under load); for too few servers it is not.
PLACEMENT_ERR_CODE = 10005
TRANSIENT_NATS_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.FlushTimeoutError,
    NoStreamResponseError,  # a publish answered empty: the stream is between leaders
    TimeoutError,
    ConnectionError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is the bus being briefly unavailable (worth retrying as it is)."""
    if isinstance(exc, ServiceUnavailableError):  # a 503 status: raised with no code set
        return True
    if isinstance(exc, APIError):
        if exc.err_code == PLACEMENT_ERR_CODE:
            return "offline" in (exc.description or "")
        return exc.code == 503 or exc.err_code in TRANSIENT_ERR_CODES
    return isinstance(exc, TRANSIENT_NATS_ERRORS)


def backoff(attempt: int) -> float:
    """The wait before try `attempt + 1` (attempt ≥ 1): doubling, capped, with jitter."""
    first, largest = BACKOFF_S
    return min(largest, first * 2 ** min(attempt - 1, 16)) * random.uniform(0.8, 1.2)


async def retry_transient(
    call: Callable[[], Awaitable[T]], *, what: str, deadline_s: float | None = SETUP_DEADLINE_S
) -> T:
    """`await call()`, retrying transient bus errors with a backoff until `deadline_s`
    (None: forever); any other error, or the last transient one, is raised."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            attempt += 1
            if not is_transient(exc):
                raise
            waited = time.monotonic() - started
            if deadline_s is not None and waited >= deadline_s:
                raise
            delay = backoff(attempt)
            report_transient(what, exc, attempt, delay)
            await asyncio.sleep(delay)


def report_transient(what: str, exc: BaseException, attempt: int, delay: float) -> None:
    """One warning line at tries 1, 2, 4, 8, ... (debug in between), so an outage is seen
    but does not flood the log."""
    report = log.warning if attempt & (attempt - 1) == 0 else log.debug
    report(
        "bus_unavailable",
        message=f"{what}: bus unavailable ({type(exc).__name__}: {exc}); "
        f"retry {attempt} in {delay:.1f}s",
    )
