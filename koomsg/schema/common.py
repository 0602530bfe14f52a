"""Types every area shares: ``Node``, pages of results, scalars."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from koomsg.core.pagination import Page, count_total
from koomsg.schema.context import Info

T = TypeVar("T")


@strawberry.interface(
    description="An object with a globally unique id, fetchable with `node(id:)`."
)
class Node:
    id: strawberry.ID


@strawberry.type(description="Where a page of results sits in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    page: strawberry.Private[Page[Any]]

    @strawberry.field(description="Rows matching the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        # Counted here, only for queries that select it; the statement carries the
        # principal's filter, so this reads exactly what the page did.
        async with info.context.runtime.db.session() as session:
            return await count_total(session, self.page)


def to_connection(page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
    edges = [
        Edge(node=convert(item), cursor=cursor)
        for item, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        page=page,
    )
