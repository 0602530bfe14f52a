"""``node(id:)``: each area registers how to fetch its objects by id prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import NotFound
from koomsg.core.ids import prefix_of
from koomsg.core.principal import Principal
from koomsg.schema.common import Node
from koomsg.schema.context import Info

Fetch = Callable[[AsyncSession, Principal, str], Awaitable[Any]]


@dataclass(frozen=True)
class NodeKind:
    action: str
    fetch: Fetch
    # Kinds that live outside the database (public templates come from plugins)
    # also get the process runtime.
    with_runtime: bool = False


NODE_KINDS: dict[str, NodeKind] = {}


def register_node(prefix: str, action: str, fetch: Any, *, with_runtime: bool = False) -> None:
    NODE_KINDS[prefix] = NodeKind(action, fetch, with_runtime)


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object by its id. Needs the list permission of the object's kind."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        kind = NODE_KINDS.get(prefix_of(id))
        if kind is None:
            raise NotFound("no object has this id", field="id")
        async with info.context.read(kind.action) as (session, principal):
            if kind.with_runtime:
                return await kind.fetch(session, principal, id, info.context.runtime)  # type: ignore[call-arg,no-any-return]
            return await kind.fetch(session, principal, id)  # type: ignore[no-any-return]
