"""Units of work: all or nothing, also when they use savepoints (SQLite included)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from koomsg.core.tenancy.models import Enterprise
from koomsg.runtime import Runtime


class Boom(Exception):
    pass


async def names(runtime: Runtime) -> list[str]:
    async with runtime.db.session() as session:
        return [row.name for row in (await session.exec(select(Enterprise))).all()]


async def test_a_failed_unit_of_work_writes_nothing_even_after_a_savepoint(
    runtime: Runtime,
) -> None:
    # sqlite3 used to run a leading SAVEPOINT as a transaction of its own, whose
    # RELEASE committed: the first row survived the failure of the unit of work.
    with pytest.raises(Boom):
        async with runtime.db.transaction() as session:
            async with session.begin_nested():
                session.add(Enterprise(name="Kept by mistake"))
                await session.flush()
            session.add(Enterprise(name="Second"))
            await session.flush()
            raise Boom
    assert await names(runtime) == []


async def test_a_clean_unit_of_work_commits_everything(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        async with session.begin_nested():
            session.add(Enterprise(name="One"))
        session.add(Enterprise(name="Two"))
    assert sorted(await names(runtime)) == ["One", "Two"]
