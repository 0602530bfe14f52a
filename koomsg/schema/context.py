"""The per-request context every resolver receives.

Resolvers open a unit of work naming the one action they perform:

    async with info.context.write("KooMessage:iamUser:create") as (session, principal):
        ...

``write`` commits when the block ends cleanly and rolls back on any error, so
a failed operation writes nothing; ``read`` never commits. With
``self_service=True`` the core call authorizes the action itself: an IAM
user may list, create and revoke its own access keys without it.

``permissions()`` is the caller's policies for this request, read once and
shared by the root fields' reads and every nested field's check
(``schema/authorization.py``); a write drops it, since a mutation may have
changed those very policies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.types import Info as StrawberryInfo

from koomsg.core.errors import Unauthenticated
from koomsg.core.iam import keys
from koomsg.core.iam.permissions import EffectivePermissions
from koomsg.core.iam.service import authorize
from koomsg.core.principal import Principal
from koomsg.core.tenancy.suspension import ensure_not_suspended
from koomsg.runtime import Runtime


class Context:
    def __init__(
        self,
        runtime: Runtime,
        *,
        bearer: str | None,
        request: Any = None,
        principal: Principal | None = None,
    ) -> None:
        self.runtime = runtime
        self.bearer = bearer
        self.request = request
        self.request_id = uuid.uuid4().hex[:16]
        self.loaders: dict[str, Any] = {}
        # Set when the HTTP rate-limit gate already authenticated this request's key.
        self._principal: Principal | None = principal
        self._permissions: EffectivePermissions | None = None
        self._principal_lock = asyncio.Lock()
        self._permissions_lock = asyncio.Lock()
        # Set by strawberry from a WebSocket's connection_init payload.
        self.connection_params: dict[str, Any] | None = None
        # taskProgress streams running on this (WebSocket) connection: they are capped.
        self.open_subscriptions = 0

    async def principal(self, session: AsyncSession) -> Principal:
        # A WebSocket's context lives as long as the connection: authenticate each
        # operation there, so a revoked key stops at its next one.
        long_lived = getattr(self.request, "scope", {}).get("type") == "websocket"
        # Root fields run concurrently: one authentication serves them all, so they
        # share one principal and one load of its permissions.
        async with self._principal_lock:
            if self._principal is None or long_lived:
                bearer = self.bearer
                if bearer is None and self.connection_params:
                    bearer = bearer_from_headers(
                        {str(k).lower(): v for k, v in self.connection_params.items()}
                    )
                self._principal = await keys.authenticate(session, bearer)
                self.runtime.key_usage.touch(self._principal.key_id)
            return self._principal

    async def permissions(self, session: AsyncSession | None = None) -> EffectivePermissions:
        """The caller's permissions, loaded once per request (per operation on a WebSocket)."""
        async with self._permissions_lock:
            held = self._permissions
            # A new principal object means a new authentication (a WebSocket operation).
            if held is None or held.principal is not self._principal:
                if session is None:
                    async with self.runtime.db.session() as own:
                        held = await self._load_permissions(own)
                else:
                    held = await self._load_permissions(session)
                self._permissions = held
            return held

    async def _load_permissions(self, session: AsyncSession) -> EffectivePermissions:
        principal = self._principal or await self.principal(session)
        return await EffectivePermissions.load(session, principal)

    async def authenticated(self) -> bool:
        """Whether the request carries a valid key (introspection asks this)."""
        try:
            async with self.runtime.db.session() as session:
                await self.principal(session)
        except Unauthenticated:
            return False
        return True

    @asynccontextmanager
    async def write(
        self, action: str, *, self_service: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, Principal]]:
        try:
            async with self.runtime.db.transaction() as session:
                principal = await self.principal(session)
                # Every mutation comes through here: one check holds a suspended tenant.
                await ensure_not_suspended(session, principal)
                if not self_service:
                    await authorize(session, principal=principal, action=action)
                yield session, principal
        finally:
            # The mutation may have changed the caller's own policies.
            self._permissions = None

    @asynccontextmanager
    async def read(
        self, action: str | None, *, self_service: bool = False
    ) -> AsyncIterator[tuple[AsyncSession, Principal]]:
        """``action`` None is for ``me`` alone: any valid key may ask who it is."""
        async with self.runtime.db.session() as session:
            principal = await self.principal(session)
            if action is not None and not self_service:
                held = await self.permissions(session)
                await authorize(session, principal=principal, action=action, permissions=held)
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
