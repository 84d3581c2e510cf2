"""A lost lease says why, on a real nats-server: expired unrenewed (its holder stalled past
the TTL, as `up` did while importing torch inside its event loop) or taken over by another
holder. `up` prints that reason when it stops on a lost loop lease."""

from __future__ import annotations

import asyncio

import pytest

from handlers.coordinator import Holder, KeptLease, LeaseClient, LeaseLost
from ops.app import App


async def test_a_lease_that_expired_unrenewed_is_lost_as_expired(app: App) -> None:
    leases = LeaseClient(app.store)
    lease = await leases.acquire("test.expired", Holder.current("stalled"), ttl_s=1)
    assert lease is not None

    async def expired() -> None:
        while (await leases.read("test.expired"))[1] is not None:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(expired(), 30)  # the server's TTL ran out; nobody renewed
    with pytest.raises(LeaseLost, match=r"lease 'test.expired' expired: no renewal landed "
                       r"within its 1s TTL"):  # fmt: skip
        await leases.renew(lease)


async def test_a_lease_taken_over_names_the_new_holder_and_the_keeper_keeps_the_reason(
    app: App,
) -> None:
    leases = LeaseClient(app.store)
    mine = await leases.acquire("test.taken", Holder.current("first"), ttl_s=30)
    assert mine is not None
    other = Holder(host="elsewhere", pid=4242, since="2026-12-02T00:00:00+00:00")
    await leases._publish("test.taken", other, expected=mine.token, ttl_s=30)
    kept = KeptLease(leases, mine, every_s=0.1).start()
    try:
        await asyncio.wait_for(kept.lost.wait(), 30)
    finally:
        await kept.stop()
    assert kept.lost_reason == f"lease 'test.taken' was taken over by {other.describe()}"


async def test_stopping_a_renewer_ends_it_even_when_its_publish_swallowed_the_cancel(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py's Client._flush_pending catches CancelledError: a renewer cancelled mid-publish
    went on renewing, and the stop that awaited it never returned (a trainer kept its slot,
    its result unpublished, for the rest of a 60-minute run)."""
    leases = LeaseClient(app.store)
    lease = await leases.acquire("test.swallowed", Holder.current("finished"), ttl_s=30)
    assert lease is not None
    publish, in_flight = leases.js.publish, asyncio.Event()

    async def swallowing(*args: object, **kwargs: object) -> object:
        in_flight.set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            pass  # what nats-py does with a cancel that lands while it flushes
        return await publish(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(leases.js, "publish", swallowing)
    kept = KeptLease(leases, lease, every_s=0.05).start()
    await asyncio.wait_for(in_flight.wait(), 30)
    await asyncio.wait_for(kept.stop(), 30)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "lease:test.swallowed"]
    assert await leases.release(kept.lease)  # the renewal in flight landed; its token is kept
    assert (await leases.read("test.swallowed"))[1] is None
