"""Databases for the store tests: a SQLite file, and a throw-away PostgreSQL database.

The PostgreSQL server defaults to the local one (trust auth); point
``DEEPAAS_TEST_POSTGRES`` at another server as ``postgresql://user@host:port/db``
(the database is only used to create and drop a scratch database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from deepaas_host.store import sqlite_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


class Clock:
    """A clock the test moves by hand; injected into the store."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("asyncpg is not installed: pip install asyncpg")
    server = make_url(os.environ.get("DEEPAAS_TEST_POSTGRES", DEFAULT_POSTGRES))
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {server.render_as_string()} is unreachable "
            f"({type(exc).__name__}: {exc}); start it or set "
            "DEEPAAS_TEST_POSTGRES"
        )
    name = f"deepaas_host_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each behaviour test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    url: str = request.getfixturevalue("postgres_url")
    return url
