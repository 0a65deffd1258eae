"""TokenGuard: the cache of active tokens, when it is enabled, and last-use bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepaas_host.api.auth import LAST_USED_INTERVAL, TokenGuard
from deepaas_host.auth import Scope
from deepaas_host.store import TokenStore, sqlite_url


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("loopback", "insecure", "before", "after_revoking"),
    [
        # A loopback host is open until a first token; revoking it locks, not opens.
        (True, False, False, True),
        (False, False, True, True),
        # --insecure: open whenever no token is active.
        (True, True, False, False),
        (False, True, False, False),
    ],
)
async def test_when_tokens_are_required(
    tmp_path: Path, loopback: bool, insecure: bool, before: bool, after_revoking: bool
) -> None:
    async with await TokenStore.open(sqlite_url(tmp_path)) as store:
        guard = TokenGuard(store, loopback=loopback, insecure=insecure)
        await guard.refresh()
        assert guard.enabled is before
        record, token = await store.create(Scope.PREDICT)
        assert guard.scope_of(token) is None  # not until the next refresh
        await guard.refresh()
        assert guard.enabled
        assert guard.active_tokens == 1
        assert guard.scope_of(token) is Scope.PREDICT
        assert guard.scope_of(token + "x") is None
        await store.revoke(record.id)
        await guard.refresh()
        assert guard.scope_of(token) is None
        assert guard.enabled is after_revoking
        # A new guard on the same store (a restart) comes to the same verdict.
        restarted = TokenGuard(store, loopback=loopback, insecure=insecure)
        await restarted.refresh()
        assert restarted.enabled is after_revoking


@pytest.mark.asyncio
async def test_last_use_is_written_at_most_once_per_interval(tmp_path: Path) -> None:
    clock = Clock()
    async with await TokenStore.open(sqlite_url(tmp_path)) as store:
        record, token = await store.create(Scope.MANAGE)
        guard = TokenGuard(store, loopback=True, clock=clock)
        await guard.refresh()

        async def last_used() -> float | None:
            (listed,) = await store.list()
            return listed.last_used_at

        assert await last_used() is None
        guard.scope_of(token)
        clock.now += 1
        guard.scope_of(token)  # the latest use before a flush is the one written
        await guard.flush()
        assert await last_used() == clock.now

        first = clock.now
        clock.now += LAST_USED_INTERVAL - 1
        guard.scope_of(token)
        await guard.refresh()
        assert await last_used() == first

        clock.now += 1
        guard.scope_of(token)
        await guard.refresh()
        assert await last_used() == clock.now
        assert record.last_used_at is None
