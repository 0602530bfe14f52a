"""The migrations and the models describe the same database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from koomsg.core.db import make_engine
from koomsg.core.models import metadata


async def test_migrations_match_the_models(koomsg_database_url: str) -> None:
    engine = make_engine(koomsg_database_url)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert drift == [], f"models and migrations differ: {drift}"
