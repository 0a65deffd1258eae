"""TokenStore against real databases: a SQLite file in tmp_path and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from deepaas_host.auth import Scope
from deepaas_host.errors import Conflict, TokenNotFound
from deepaas_host.store import TokenStore, open_engine, tokens_table
from deepaas_host.store.tokens import TOKEN_PREFIX, hash_token

from .conftest import Clock


@pytest.mark.asyncio
async def test_create_returns_the_token_once_and_stores_its_hash(db_url: str, clock: Clock) -> None:
    async with await TokenStore.open(db_url, clock=clock) as store:
        record, token = await store.create(Scope.PREDICT, "ci")
        assert token.startswith(TOKEN_PREFIX)
        assert len(token) == len(TOKEN_PREFIX) + 43
        assert len(record.id) == 8
        int(record.id, 16)
        assert (record.name, record.scope, record.created_at) == ("ci", Scope.PREDICT, clock.now)
        assert record.active
        assert record.last_used_at is None

        engine = await open_engine(db_url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.select(tokens_table))).mappings().all()
        finally:
            await engine.dispose()
        (row,) = rows
        assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {str(value) for value in row.values()}
        assert await store.active() == {hash_token(token): Scope.PREDICT}


@pytest.mark.asyncio
async def test_list_revoke_and_active(db_url: str, clock: Clock) -> None:
    async with await TokenStore.open(db_url, clock=clock) as store:
        first, first_token = await store.create("predict", "first")
        clock.advance()
        second, second_token = await store.create(Scope.MANAGE)
        clock.advance()
        third, _ = await store.create(Scope.MANAGE, "  third ")
        assert third.name == "third"
        assert second.name == ""
        assert len({first.id, second.id, third.id}) == 3

        clock.advance(5)
        by_name = await store.revoke("third")
        by_id = await store.revoke(first.id)
        assert (by_name.id, by_name.revoked_at) == (third.id, clock.now)
        assert (by_id.id, by_id.revoked_at) == (first.id, clock.now)
        assert await store.active() == {hash_token(second_token): Scope.MANAGE}

        clock.advance(5)
        again = await store.revoke(first.id)
        assert again.revoked_at == by_id.revoked_at  # the first revocation counts
        listed = await store.list()
        assert [r.id for r in listed] == [first.id, second.id, third.id]
        assert [r.active for r in listed] == [False, True, False]
        assert listed[0].to_dict() == {
            "id": first.id,
            "name": "first",
            "scope": "predict",
            "created": "1970-01-12T13:46:40.000Z",
            "last_used": None,
            "revoked": "1970-01-12T13:46:47.000Z",
        }
        assert hash_token(first_token) not in await store.active()


@pytest.mark.asyncio
async def test_unknown_tokens_and_taken_names(db_url: str) -> None:
    async with await TokenStore.open(db_url) as store:
        with pytest.raises(TokenNotFound, match="'nope'"):
            await store.revoke("nope")
        record, _ = await store.create(Scope.PREDICT, "ci")
        with pytest.raises(Conflict, match="already named 'ci'"):
            await store.create(Scope.MANAGE, "ci")
        await store.revoke("ci")
        with pytest.raises(TokenNotFound):
            await store.revoke("ci")  # by name, only active tokens match
        replacement, _ = await store.create(Scope.MANAGE, "ci")
        assert replacement.id != record.id
        assert (await store.revoke("ci")).id == replacement.id
        with pytest.raises(ValueError):
            await store.create("admin")


@pytest.mark.asyncio
async def test_mark_used(db_url: str, clock: Clock) -> None:
    async with await TokenStore.open(db_url, clock=clock) as store:
        used, used_token = await store.create(Scope.PREDICT)
        idle, _ = await store.create(Scope.PREDICT)
        await store.mark_used({})
        await store.mark_used({hash_token(used_token): 1234.5, hash_token("dh_unknown"): 1.0})
        last_used = {r.id: r.last_used_at for r in await store.list()}
        assert last_used == {used.id: 1234.5, idle.id: None}


@pytest.mark.asyncio
async def test_tokens_survive_reopening(db_url: str) -> None:
    async with await TokenStore.open(db_url) as store:
        _, token = await store.create(Scope.MANAGE, "ops")
    async with await TokenStore.open(db_url) as store:
        assert await store.active() == {hash_token(token): Scope.MANAGE}
