"""VersionStore against real databases: pinning, what pruning picks, older schemas."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from deepaas_host.store import open_engine
from deepaas_host.store.versions import VersionRecord, VersionSource, VersionStore


async def add(store: VersionStore, name: str, source: VersionSource) -> VersionRecord:
    return await store.add(
        "demo",
        name,
        engine="custom",
        filename=f"{name}.json",
        key=f"demo/{uuid.uuid4().hex}",
        size=3,
        sha256="0" * 64,
        source=source,
        job_id=uuid.uuid4().hex if source is VersionSource.TRAINING else None,
    )


@pytest.mark.asyncio
async def test_pinning_round_trips(db_url: str) -> None:
    async with await VersionStore.open(db_url) as store:
        record = await add(store, "v1", VersionSource.TRAINING)
        assert record.pinned is False
        assert record.to_dict()["pinned"] is False
        pinned = await store.set_pinned("demo", "v1", True)
        assert pinned is not None and pinned.pinned is True
        assert (await store.get("demo", "v1")) == pinned
        assert (await store.list("demo"))[0].pinned is True
        unpinned = await store.set_pinned("demo", "v1", False)
        assert unpinned is not None and unpinned.pinned is False
        assert await store.set_pinned("demo", "nope", True) is None
        assert await store.set_pinned("other", "v1", True) is None


@pytest.mark.asyncio
async def test_surplus_is_the_oldest_unprotected_trained_versions(db_url: str) -> None:
    async with await VersionStore.open(db_url) as store:
        for name in ("t1", "t2"):
            await add(store, name, VersionSource.TRAINING)
        await add(store, "up1", VersionSource.UPLOAD)
        for name in ("t3", "t4", "t5", "t6"):
            await add(store, name, VersionSource.TRAINING)
        await add(store, "up2", VersionSource.UPLOAD)
        await store.set_pinned("demo", "t2", True)
        await add(store, "t7", VersionSource.TRAINING)
        await store.add(
            "other",
            "t0",
            engine="custom",
            filename="t0.json",
            key="other/x",
            size=3,
            sha256="0" * 64,
            source=VersionSource.TRAINING,
        )

        def names(records: list[VersionRecord]) -> list[str]:
            return [r.name for r in records]

        # Trained and unprotected: t1 t3 t4 t5 t6 t7 (t2 is pinned; t1 the default below).
        assert names(await store.surplus_trained("demo", 2, spare="t1")) == ["t3", "t4", "t5"]
        assert names(await store.surplus_trained("demo", 2)) == ["t1", "t3", "t4", "t5"]
        assert names(await store.surplus_trained("demo", 10)) == []
        surplus = await store.surplus_trained("demo", 0, spare="t6")
        assert names(surplus) == ["t1", "t3", "t4", "t5", "t7"]
        assert names(await store.surplus_trained("other", 0)) == ["t0"]
        with pytest.raises(ValueError):
            await store.surplus_trained("demo", -1)


# The versions table as the first release created it: no ``pinned`` column.
_FIRST_RELEASE = sa.MetaData()
_OLD_VERSIONS = sa.Table(
    "versions",
    _FIRST_RELEASE,
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
    sa.UniqueConstraint("model", "name"),
)


@pytest.mark.asyncio
async def test_a_database_of_the_first_release_gains_the_pinned_column(db_url: str) -> None:
    engine = await open_engine(db_url)
    now = time.time()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_FIRST_RELEASE.create_all)
            await conn.execute(
                _OLD_VERSIONS.insert().values(
                    id="a" * 32,
                    model="demo",
                    name="v1",
                    engine="custom",
                    source="training",
                    created_at=now,
                    updated_at=now,
                    filename="m.json",
                    key="demo/x",
                    size=3,
                    sha256="0" * 64,
                )
            )
    finally:
        await engine.dispose()

    for _ in range(2):  # opening it again changes nothing
        async with await VersionStore.open(db_url) as store:
            (old,) = await store.list("demo")
            assert (old.name, old.pinned, old.created_at) == ("v1", False, now)
            assert (await store.set_pinned("demo", "v1", True)) is not None
            await store.set_pinned("demo", "v1", False)
            new = await add(store, "v2", VersionSource.TRAINING)
            assert [r.name for r in await store.list("demo")] == ["v2", "v1"]
            assert new.pinned is False
            await store.delete("demo", "v2")
