"""Access tokens: only a SHA-256 of each token is stored, never the token itself.

A token is ``dh_`` followed by 43 URL-safe characters (256 random bits), so a
plain, fast hash is enough: there is nothing to guess that a slow one would
protect.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from deepaas_host.auth.scopes import Scope
from deepaas_host.errors import Conflict, TokenNotFound
from deepaas_host.store.db import EngineStore, create_schema, iso_utc, metadata, open_engine

__all__ = [
    "TOKEN_PREFIX",
    "TokenRecord",
    "TokenStore",
    "hash_token",
    "new_token",
    "tokens_table",
]

TOKEN_PREFIX = "dh_"

tokens_table = sa.Table(
    "tokens",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(16), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)


def new_token() -> str:
    """A fresh token: ``dh_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps of ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """One token as stored (without the token); times are unix seconds."""

    id: str
    name: str
    scope: Scope
    created_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope.value,
            "created": iso_utc(self.created_at),
            "last_used": iso_utc(self.last_used_at),
            "revoked": iso_utc(self.revoked_at),
        }


_COLUMNS = (
    tokens_table.c.id,
    tokens_table.c.name,
    tokens_table.c.scope,
    tokens_table.c.created_at,
    tokens_table.c.last_used_at,
    tokens_table.c.revoked_at,
)


def _record(row: sa.RowMapping) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        scope=Scope(row["scope"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


class TokenStore(EngineStore):
    """Access tokens in the host's database (the same one as the training jobs)::

    async with await TokenStore.open(sqlite_url(data_dir)) as store:
        record, token = await store.create(Scope.PREDICT, "ci")
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
        owns_engine: bool = False,
    ) -> None:
        super().__init__(engine, owns_engine=owns_engine)
        self._clock = clock

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> TokenStore:
        """Connect to ``url`` and create the tables if needed."""
        engine = await open_engine(url)
        try:
            await create_schema(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock, owns_engine=True)

    async def create(self, scope: Scope | str, name: str = "") -> tuple[TokenRecord, str]:
        """Record a new token; return its record and the token, which is not kept.

        ``name`` is free text for people; two active tokens cannot share one
        (``Conflict``), so a name identifies a token for :meth:`revoke`.
        """
        scope = Scope(scope)
        name = name.strip()
        token = new_token()
        record = TokenRecord(
            id=secrets.token_hex(4), name=name, scope=scope, created_at=self._clock()
        )
        async with self._begin() as conn:
            if name and await self._active_named(conn, name):
                raise Conflict(
                    f"An active token is already named {name!r}; revoke it or choose another name."
                )
            await conn.execute(
                tokens_table.insert().values(
                    id=record.id,
                    name=name,
                    scope=scope.value,
                    token_sha256=hash_token(token),
                    created_at=record.created_at,
                )
            )
        return record, token

    async def list(self) -> builtins.list[TokenRecord]:
        """Every token, revoked ones too, oldest first."""
        query = sa.select(*_COLUMNS).order_by(tokens_table.c.seq)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(row) for row in rows]

    async def revoke(self, id_or_name: str) -> TokenRecord:
        """Revoke the token with this id, or else the active token with this name.

        A token revoked before keeps its first ``revoked_at``. Raises
        ``TokenNotFound`` when nothing matches.
        """
        async with self._begin() as conn:
            query = sa.select(*_COLUMNS).where(tokens_table.c.id == id_or_name)
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                named = await self._active_named(conn, id_or_name)
                if not named:
                    raise TokenNotFound(id_or_name)
                row = named[0]
            if row["revoked_at"] is not None:
                return _record(row)
            revoked_at = self._clock()
            await conn.execute(
                tokens_table.update()
                .where(tokens_table.c.id == row["id"], tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=revoked_at)
            )
        return dataclasses.replace(_record(row), revoked_at=revoked_at)

    async def active(self) -> dict[str, Scope]:
        """Scope of every token that is not revoked, by the token's hash."""
        query = sa.select(tokens_table.c.token_sha256, tokens_table.c.scope).where(
            tokens_table.c.revoked_at.is_(None)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return {token_sha256: Scope(scope) for token_sha256, scope in rows}

    async def exists(self) -> bool:
        """Whether any token was ever created here, revoked ones included."""
        async with self._connect() as conn:
            first = await conn.execute(sa.select(tokens_table.c.seq).limit(1))
            return first.first() is not None

    async def mark_used(self, used: Mapping[str, float]) -> None:
        """Record when tokens, given by hash, were last used."""
        if not used:
            return
        query = (
            tokens_table.update()
            .where(tokens_table.c.token_sha256 == sa.bindparam("hash"))
            .values(last_used_at=sa.bindparam("at"))
        )
        async with self._begin() as conn:
            await conn.execute(query, [{"hash": h, "at": at} for h, at in used.items()])

    async def _active_named(self, conn: AsyncConnection, name: str) -> builtins.list[sa.RowMapping]:
        query = sa.select(*_COLUMNS).where(
            tokens_table.c.name == name, tokens_table.c.revoked_at.is_(None)
        )
        return builtins.list((await conn.execute(query)).mappings().all())
