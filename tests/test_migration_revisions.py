"""Migration 0015: existing templates become revision 1, approved if they were."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from koomsg.core.db import make_engine
from koomsg.migrations import upgrade_async

ROWS = [
    ("tpl_approved", "APPROVED", None),
    ("tpl_waiting", "APPROVING", None),
    ("tpl_rejected", "REJECTED", "no claims"),
]


async def _pg_admin(statement: str) -> None:
    import asyncpg

    url = os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
async def scratch_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of this test's own (the session one is already at head)."""
    if os.environ.get("KOOMSG_TEST_DATABASE", "sqlite") != "postgresql":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"koomsg_mig_{secrets.token_hex(4)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    base = os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        yield base.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + (
            f"/{name}"
        )
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _run(url: str, statement: str, rows: list[dict[str, object]] | None = None) -> list[Any]:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), rows)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_existing_templates_become_revision_one(scratch_url: str) -> None:
    await upgrade_async(scratch_url, "0011")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await _run(
        scratch_url,
        "INSERT INTO enterprise (id, name, real_name_verified, industry_class, service_enabled, "
        "created_at) VALUES ('ent_1', 'Acme', true, 'SENSITIVE', true, :now)",
        [{"now": now}],
    )
    await _run(
        scratch_url,
        "INSERT INTO template (id, enterprise_id, name, body_type, body, params, "
        "support_unsubscribe, status, review_comment, created_at, updated_at) VALUES "
        "(:id, 'ent_1', 'T', 'PLAIN_TEXT', 'Hi {{name}}', '[\"name\"]', true, :status, "
        ":comment, :now, :now)",
        [{"id": i, "status": s, "comment": c, "now": now} for i, s, c in ROWS],
    )
    await upgrade_async(scratch_url)
    templates = await _run(
        scratch_url, "SELECT id, revision, approved_revision FROM template ORDER BY id"
    )
    assert templates == [
        ("tpl_approved", 1, 1),
        ("tpl_rejected", 1, None),
        ("tpl_waiting", 1, None),
    ]
    revisions = await _run(
        scratch_url,
        "SELECT template_id, revision, status, review_comment, body, support_unsubscribe "
        "FROM template_revision ORDER BY template_id",
    )
    assert revisions == [
        ("tpl_approved", 1, "APPROVED", None, "Hi {{name}}", True),
        ("tpl_rejected", 1, "REJECTED", "no claims", "Hi {{name}}", True),
        ("tpl_waiting", 1, "APPROVING", None, "Hi {{name}}", True),
    ]
