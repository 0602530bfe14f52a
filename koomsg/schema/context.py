"""The per-request context every resolver receives.

Resolvers open a unit of work naming the one action they perform:

    async with info.context.write("KooMessage:iamUser:create") as (session, principal):
        ...

``write`` commits when the block ends cleanly and rolls back on any error, so
a failed operation writes nothing; ``read`` never commits. With
``self_service=True`` the core call authorizes the action itself: an IAM
user may list, create and revoke its own access keys without it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.types import Info as StrawberryInfo

from koomsg.core.iam import keys
from koomsg.core.iam.service import authorize
from koomsg.core.principal import Principal
from koomsg.runtime import Runtime


class Context:
    def __init__(self, runtime: Runtime, *, bearer: str | None, request: Any = None) -> None:
        self.runtime = runtime
        self.bearer = bearer
        self.request = request
        self.request_id = uuid.uuid4().hex[:16]
        self.loaders: dict[str, Any] = {}
        self._principal: Principal | None = None
        # Set by strawberry from a WebSocket's connection_init payload.
        self.connection_params: dict[str, Any] | None = None
        # taskProgress streams running on this (WebSocket) connection: they are capped.
        self.open_subscriptions = 0

    async def principal(self, session: AsyncSession) -> Principal:
        # A WebSocket's context lives as long as the connection: authenticate each
        # operation there, so a revoked key stops at its next one.
        long_lived = getattr(self.request, "scope", {}).get("type") == "websocket"
        if self._principal is None or long_lived:
            bearer = self.bearer
            if bearer is None and self.connection_params:
                bearer = bearer_from_headers(
                    {str(k).lower(): v for k, v in self.connection_params.items()}
                )
            self._principal = await keys.authenticate(session, bearer)
            self.runtime.key_usage.touch(self._principal.key_id)
        return self._principal

    @asynccontextmanager
    async def write(
        self, action: str, *, self_service: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, Principal]]:
        async with self.runtime.db.transaction() as session:
            principal = await self.principal(session)
            if not self_service:
                await authorize(session, principal=principal, action=action)
            yield session, principal

    @asynccontextmanager
    async def read(
        self, action: str | None, *, self_service: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, Principal]]:
        """``action`` None is for ``me`` alone: any valid key may ask who it is."""
        async with self.runtime.db.session() as session:
            principal = await self.principal(session)
            if action is not None and not self_service:
                await authorize(session, principal=principal, action=action)
            yield session, principal


Info = StrawberryInfo[Context, None]


def bearer_from_headers(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, secret = value.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def loader(info: Info, name: str, batch: Any) -> Any:
    """A per-request DataLoader; ``batch(session, keys)`` returns values in key order."""
    from strawberry.dataloader import DataLoader

    context = info.context
    if name not in context.loaders:

        async def load(keys_: list[Any]) -> list[Any]:
            async with context.runtime.db.session() as session:
                return list(await batch(session, keys_))

        context.loaders[name] = DataLoader(load_fn=load)
    return context.loaders[name]
