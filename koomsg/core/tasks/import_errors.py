"""A task's import errors, a page at a time.

A recipient file may leave thousands of rejected rows; a task answers them in
pages (``first`` / ``after``) so one query cannot ask for all of every task's.
Errors are written in file order (chunk after chunk, each in row order), so
their ids order them and a cursor is the last id seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput
from koomsg.core.pagination import decode_cursor, encode_cursor, page_size
from koomsg.core.tasks.models import RecipientImportError

LISTING = "recipient_import_error"


@dataclass(frozen=True)
class ErrorPage:
    """Which page of one task's errors: ``first`` of them after the error ``after``."""

    task_id: str
    first: int
    after: int | None


def error_page(task_id: str, *, first: int | None, after: str | None) -> ErrorPage:
    """Check the page arguments (BAD_USER_INPUT on ``first`` or ``after``) before any query."""
    size = page_size(first)
    position = decode_cursor(after, LISTING) if after else None
    if position is not None and not position.isdigit():
        raise BadInput("after", "not a cursor returned by this API")
    return ErrorPage(task_id, size, int(position) if position is not None else None)


def error_cursor(error: RecipientImportError) -> str:
    return encode_cursor(str(error.id), LISTING)


async def error_pages(
    session: AsyncSession, pages: Sequence[ErrorPage]
) -> dict[ErrorPage, list[RecipientImportError]]:
    """Every asked page; first pages of many tasks share one query per page size."""
    found: dict[ErrorPage, list[RecipientImportError]] = {}
    firsts: dict[int, list[ErrorPage]] = defaultdict(list)
    for page in pages:
        if page.after is None:
            firsts[page.first].append(page)
        else:
            found[page] = await _after(session, page)
    for size, group in firsts.items():
        rows = await _first_pages(session, [p.task_id for p in group], size)
        for page in group:
            found[page] = rows.get(page.task_id, [])
    return found


async def _after(session: AsyncSession, page: ErrorPage) -> list[RecipientImportError]:
    stmt = (
        select(RecipientImportError)
        .where(
            col(RecipientImportError.task_id) == page.task_id,
            col(RecipientImportError.id) > page.after,
        )
        .order_by(col(RecipientImportError.id))
        .limit(page.first)
    )
    return list((await session.exec(stmt)).all())


async def _first_pages(
    session: AsyncSession, task_ids: list[str], size: int
) -> dict[str, list[RecipientImportError]]:
    # Numbered per task, so each task gets its first ``size`` errors from one query.
    number = (
        func.row_number()
        .over(partition_by=col(RecipientImportError.task_id), order_by=col(RecipientImportError.id))
        .label("n")
    )
    numbered = (
        select(RecipientImportError, number)
        .where(col(RecipientImportError.task_id).in_(task_ids))
        .subquery()
    )
    error = aliased(RecipientImportError, numbered)
    stmt = select(error).where(numbered.c.n <= size).order_by(numbered.c.id)
    rows: dict[str, list[RecipientImportError]] = defaultdict(list)
    for row in (await session.exec(stmt)).all():
        rows[row.task_id].append(row)
    return rows
