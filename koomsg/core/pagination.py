"""Keyset pagination, newest first.

Ids sort by creation time (see ``ids.py``), so the cursor is the last id seen
and a page is "ids below the cursor". Rows added while a client pages land
before its cursor and never shift later pages. A cursor names the listing it
came from: one made up, or taken from another listing, is BAD_USER_INPUT on
``after`` instead of a page that silently starts somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass
class Page(Generic[T]):
    """One page; the total is counted only when asked for (``count_total``): a COUNT over a
    big filter costs more than the page itself, and most pages never show it."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None
    count_statement: Select[Any] | None = None


async def count_total(session: AsyncSession, page: Page[Any]) -> int:
    """Rows matching the page's filter, on all pages."""
    if page.total_count is None:
        assert page.count_statement is not None
        page.total_count = int((await session.execute(page.count_statement)).scalar_one())
    return page.total_count


_ID = re.compile(r"[a-z]{3}_[0-9A-HJKMNP-TV-Z]{26}")
MAX_CURSOR = 128


def encode_cursor(identifier: str, listing: str) -> str:
    return base64.urlsafe_b64encode(f"{listing}:{identifier}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, listing: str) -> str:
    """The id a cursor of ``listing`` points after; BAD_USER_INPUT ``after`` otherwise."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError(cursor)
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInput("after", "not a cursor returned by this API") from None
    source, _, identifier = decoded.partition(":")
    if source != listing or not identifier:
        raise BadInput("after", "not a cursor of this list: pass a cursor this list returned")
    return identifier


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise BadInput("first", f"first must be between 0 and {MAX_PAGE_SIZE}")
    return first


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    id_column: Any,
    *,
    first: int | None,
    after: str | None,
) -> Page[Any]:
    """Run ``statement`` (already filtered) as one page ordered by ``id_column`` descending."""
    size = page_size(first)
    listing = id_column.table.name
    position = decode_cursor(after, listing) if after else None
    if position is not None and not _ID.fullmatch(position):
        raise BadInput("after", "not a cursor returned by this API")
    paged = statement
    if position is not None:
        paged = paged.where(id_column < position)
    rows = (await session.execute(paged.order_by(id_column.desc()).limit(size + 1))).scalars().all()
    items = list(rows[:size])
    return Page(
        items=items,
        cursors=[encode_cursor(item.id, listing) for item in items],
        has_next_page=len(rows) > size,
        has_previous_page=bool(after),
        count_statement=select(func.count()).select_from(statement.order_by(None).subquery()),
    )
