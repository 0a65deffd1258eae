"""Embedded state of the host: SQLite by default, any async SQLAlchemy URL works."""

from __future__ import annotations

from deepaas_host.store.db import (
    create_schema,
    jobs_table,
    metadata,
    open_engine,
    sqlite_url,
)
from deepaas_host.store.jobs import JobRecord, JobStore
from deepaas_host.store.tokens import TokenRecord, TokenStore, tokens_table

__all__ = [
    "JobRecord",
    "JobStore",
    "TokenRecord",
    "TokenStore",
    "create_schema",
    "jobs_table",
    "metadata",
    "open_engine",
    "sqlite_url",
    "tokens_table",
]
