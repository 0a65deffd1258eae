"""Database engine and schema of the host's embedded state.

SQLite (``sqlite+aiosqlite``) is the default: a single file in the data
directory, nothing to install or start. Everything here is portable
SQLAlchemy Core, so a server database such as PostgreSQL
(``postgresql+asyncpg://…``) is a change of URL only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from deepaas_host.store.errors import sqlite_files, translating

__all__ = [
    "DB_FILENAME",
    "SQLITE_BUSY_TIMEOUT_MS",
    "EngineStore",
    "create_schema",
    "database_files",
    "iso_utc",
    "jobs_table",
    "metadata",
    "open_engine",
    "sqlite_url",
]

DB_FILENAME = "deepaas-host.db"

# Writers queue behind each other rather than failing with "database is
# locked"; our transactions are short, so a long wait means a stuck peer.
SQLITE_BUSY_TIMEOUT_MS = 30_000

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    # Insertion order: timestamps can tie, the sequence cannot.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("progress", sa.Float, nullable=True),
    sa.Column("progress_message", sa.Text, nullable=False, default=""),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "model", "status"),
    sa.Index(None, "status"),
)


def sqlite_url(data_dir: Path) -> str:
    """URL of the default SQLite database, ``deepaas-host.db`` in ``data_dir``."""
    return f"sqlite+aiosqlite:///{(Path(data_dir) / DB_FILENAME).resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers and one writer work at the same time, also from
        # several host processes sharing the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
    finally:
        cursor.close()


def _make_parent_dir(database: str) -> None:
    Path(database).parent.mkdir(parents=True, exist_ok=True)


async def open_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url``.

    For a SQLite file the directory holding it is created if missing, and
    every connection runs in WAL mode with a busy timeout.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        await asyncio.to_thread(_make_parent_dir, database)
    engine = create_async_engine(parsed)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _add_missing_columns(conn: sa.Connection) -> None:
    """Bring tables of an older database up to date: add the columns it lacks.

    Columns added after the first release are nullable or have a server default, so
    adding them to a table that has rows is one ``ALTER TABLE`` each, on SQLite and
    PostgreSQL alike.
    """
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(
                    f"cannot add column {table.name}.{column.name}: it needs a server default"
                )
            spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))


def _create_all(conn: sa.Connection) -> None:
    metadata.create_all(conn)
    _add_missing_columns(conn)


async def create_schema(engine: AsyncEngine) -> None:
    """Create the tables that do not exist yet and add the columns older ones lack."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_create_all)
    except sa.exc.DBAPIError:
        # Another process created the tables (or added a column) between our check
        # and our change; a second pass finds them and does nothing.
        async with engine.begin() as conn:
            await conn.run_sync(_create_all)


def database_files(engine: AsyncEngine) -> tuple[Path, ...]:
    """The local files behind ``engine``: those of a SQLite file, none for a server."""
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return ()
    if database.startswith("file:"):
        return ()
    return sqlite_files(Path(database))


class EngineStore:
    """Base of the stores: an engine that is closed only by the store that opened it.

    Stores reach the database through :meth:`_begin` and :meth:`_connect`, so a
    failing database is always ``InsufficientStorage`` or ``StorageUnavailable``
    (see :mod:`deepaas_host.store.errors`); a refused statement stays what it is.
    """

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine
        self._files = database_files(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends."""
        with translating(files=self._files):
            async with self._engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading."""
        with translating(files=self._files):
            async with self._engine.connect() as conn:
                yield conn

    async def close(self) -> None:
        """Release the connections if this store opened them."""
        if self._owns_engine:
            await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def iso_utc(timestamp: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with milliseconds and a Z; None stays None."""
    if timestamp is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
