"""Which bus errors are retried as passing: an offline peer blocks placement only until it is
back; too few servers for the replicas asked never passes."""

from __future__ import annotations

import nats.errors
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

from projections.transient import is_transient


def test_placement_waits_for_an_offline_peer_but_not_for_missing_servers() -> None:
    offline = BadRequestError(
        code=400, err_code=10005, description="no suitable peers for placement, peer offline"
    )
    too_few = BadRequestError(
        code=400, err_code=10005, description="no suitable peers for placement"
    )
    assert is_transient(offline)
    assert not is_transient(too_few)


def test_elections_and_timeouts_pass_bad_requests_do_not() -> None:
    assert is_transient(ServiceUnavailableError())
    assert is_transient(BadRequestError(code=500, err_code=10118, description="stream offline"))
    assert is_transient(nats.errors.TimeoutError())
    assert not is_transient(NotFoundError(code=404, err_code=10059, description="stream not found"))
    assert not is_transient(BadRequestError(code=400, err_code=10058, description="name in use"))
    assert not is_transient(ValueError("not a bus error"))
