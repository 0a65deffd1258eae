"""Model versions: what was trained or uploaded, where its artifact is, which is default.

A version's name matches :data:`VERSION_NAME`; a version is ``pinned`` to keep it
through the pruning of trained versions (see :meth:`VersionStore.surplus_trained`).
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import json
import re
import time
import uuid
from typing import Any

import sqlalchemy as sa

from deepaas_host.store.db import EngineStore, create_schema, iso_utc, metadata, open_engine

__all__ = [
    "VERSION_NAME",
    "VersionExists",
    "VersionRecord",
    "VersionSource",
    "VersionStore",
    "versions_table",
]

versions_table = sa.Table(
    "versions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("metrics", sa.Text, nullable=True),
    # Added after the first release: create_schema adds it to older databases.
    sa.Column("pinned", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.UniqueConstraint("model", "name"),
)

#: What a version name is: it names a path segment and a file, so no slashes, no
#: spaces, no leading dot.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")

defaults_table = sa.Table(
    "default_versions",
    metadata,
    sa.Column("model", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
)


class VersionSource(enum.StrEnum):
    """Where a version came from."""

    UPLOAD = "upload"
    TRAINING = "training"

    def __str__(self) -> str:
        return self.value


class VersionExists(Exception):
    def __init__(self, model: str, name: str) -> None:
        super().__init__(f"Model {model!r} already has a version {name!r}.")
        self.model = model
        self.name = name


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    id: str
    model: str
    name: str
    engine: str
    description: str | None
    source: str
    job_id: str | None
    created_at: float
    updated_at: float
    filename: str
    key: str
    size: int
    sha256: str
    metrics: Any = None
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "name": self.name,
            "engine": self.engine,
            "description": self.description,
            "source": self.source,
            "job_id": self.job_id,
            "created": iso_utc(self.created_at),
            "updated": iso_utc(self.updated_at),
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "metrics": self.metrics,
            "pinned": self.pinned,
        }


_COLUMNS = [c for c in versions_table.c if c.name != "seq"]


def _record(row: sa.RowMapping) -> VersionRecord:
    values = {c.name: row[c.name] for c in _COLUMNS}
    values["metrics"] = json.loads(values["metrics"]) if values["metrics"] else None
    values["pinned"] = bool(values["pinned"])
    return VersionRecord(**values)


class VersionStore(EngineStore):
    """Version records of every model, in the host's database."""

    @classmethod
    async def open(cls, url: str) -> VersionStore:
        engine = await open_engine(url)
        await create_schema(engine)
        return cls(engine, owns_engine=True)

    async def get(self, model: str, name: str) -> VersionRecord | None:
        query = sa.select(*_COLUMNS).where(
            versions_table.c.model == model, versions_table.c.name == name
        )
        async with self._connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _record(row) if row else None

    async def list(self, model: str) -> builtins.list[VersionRecord]:
        """Newest first."""
        query = (
            sa.select(*_COLUMNS)
            .where(versions_table.c.model == model)
            .order_by(versions_table.c.seq.desc())
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(r) for r in rows]

    async def next_name(self, model: str) -> str:
        """``v1``, ``v2``, … the first free one."""
        names = {r.name for r in await self.list(model)}
        n = len(names) + 1
        while f"v{n}" in names:
            n += 1
        return f"v{n}"

    async def add(
        self,
        model: str,
        name: str,
        *,
        engine: str,
        filename: str,
        key: str,
        size: int,
        sha256: str,
        source: str,
        description: str | None = None,
        job_id: str | None = None,
        metrics: Any = None,
    ) -> VersionRecord:
        """Record a new version; raises VersionExists if the name is taken."""
        now = time.time()
        record = VersionRecord(
            uuid.uuid4().hex,
            model,
            name,
            engine,
            description,
            source,
            job_id,
            now,
            now,
            filename,
            key,
            size,
            sha256,
            metrics,
        )
        values = dataclasses.asdict(record)
        values["metrics"] = None if metrics is None else json.dumps(metrics, default=str)
        try:
            async with self._begin() as conn:
                await conn.execute(versions_table.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            raise VersionExists(model, name) from exc
        return record

    async def replace(
        self,
        current: VersionRecord,
        *,
        filename: str,
        key: str,
        size: int,
        sha256: str,
        engine: str | None = None,
        description: str | None = None,
    ) -> VersionRecord:
        """Replace the artifact (and engine/description when given), keep the rest."""
        changes: dict[str, Any] = {
            "filename": filename,
            "key": key,
            "size": size,
            "sha256": sha256,
            "updated_at": time.time(),
        }
        if engine is not None:
            changes["engine"] = engine
        if description is not None:
            changes["description"] = description
        async with self._begin() as conn:
            await conn.execute(
                versions_table.update().where(versions_table.c.id == current.id).values(**changes)
            )
        return dataclasses.replace(current, **changes)

    async def delete(self, model: str, name: str) -> None:
        async with self._begin() as conn:
            await conn.execute(
                versions_table.delete().where(
                    versions_table.c.model == model, versions_table.c.name == name
                )
            )
            await conn.execute(
                defaults_table.delete().where(
                    defaults_table.c.model == model, defaults_table.c.name == name
                )
            )

    async def set_pinned(self, model: str, name: str, pinned: bool) -> VersionRecord | None:
        """Pin or unpin a version; its record after the change, None if there is none."""
        where = sa.and_(versions_table.c.model == model, versions_table.c.name == name)
        async with self._begin() as conn:
            await conn.execute(versions_table.update().where(where).values(pinned=pinned))
            row = (await conn.execute(sa.select(*_COLUMNS).where(where))).mappings().first()
        return _record(row) if row else None

    async def surplus_trained(
        self, model: str, keep: int, *, spare: str | None = None
    ) -> builtins.list[VersionRecord]:
        """Versions of ``model`` that training produced beyond the newest ``keep``, oldest
        first: what pruning deletes.

        Uploaded and pinned versions, and the version named ``spare`` (the default), are
        neither counted nor returned.
        """
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        conditions = [
            versions_table.c.model == model,
            versions_table.c.source == VersionSource.TRAINING.value,
            versions_table.c.pinned.is_(sa.false()),
        ]
        if spare is not None:
            conditions.append(versions_table.c.name != spare)
        query = (
            sa.select(*_COLUMNS)
            .where(*conditions)
            .order_by(versions_table.c.seq.desc())
            .offset(keep)
        )
        async with self._connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_record(r) for r in reversed(rows)]

    async def set_default(self, model: str, name: str) -> None:
        async with self._begin() as conn:
            await conn.execute(defaults_table.delete().where(defaults_table.c.model == model))
            await conn.execute(defaults_table.insert().values(model=model, name=name))

    async def default(self, model: str) -> VersionRecord | None:
        """The version set as default, else the newest one, else None."""
        async with self._connect() as conn:
            chosen = (
                await conn.execute(
                    sa.select(defaults_table.c.name).where(defaults_table.c.model == model)
                )
            ).scalar()
        if chosen is not None:
            record = await self.get(model, chosen)
            if record is not None:
                return record
        newest = await self.list(model)
        return newest[0] if newest else None
