"""The smtp transport's connections: opened lazily, pooled per destination host, reused.

Connections carry many messages (up to :data:`MAX_MESSAGES_PER_CONNECTION`,
idle at most :data:`IDLE_SECONDS`); at most ``per_host`` are open to one host
(``KOOMSG_SMTP_MAX_CONNECTIONS_PER_HOST``) and at most ``per_enterprise``
envelopes of one enterprise are in flight
(``KOOMSG_SMTP_MAX_CONCURRENCY_PER_ENTERPRISE``). Pools belong to the running
event loop (dramatiq's AsyncIO middleware runs one per worker process).

Relay connections use the relay's TLS mode and AUTH. Direct ones use STARTTLS
when offered, without certificate checks (opportunistic TLS), and plain SMTP
to that host from then on when the handshake fails.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import weakref
from dataclasses import dataclass, field

import aiosmtplib

from koomsg.plugins.builtin.smtp.protocol import Stale, from_error, transaction
from koomsg.plugins.builtin.smtp.routes import Relay, Route
from koomsg.plugins.types import DeliveryResult, Envelope

# Many receivers cap messages per connection; reconnecting a little early is cheap.
MAX_MESSAGES_PER_CONNECTION = 100
# Receivers commonly drop idle clients after a minute or so; do not reuse older ones.
IDLE_SECONDS = 30.0


class ConnectFailed(Exception):
    """No address of a host would talk to us; the next MX may."""


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    tls: bool = False
    messages: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    @property
    def usable(self) -> bool:
        return (
            self.smtp.is_connected
            and self.messages < MAX_MESSAGES_PER_CONNECTION
            and time.monotonic() - self.idle_since < IDLE_SECONDS
        )


class _HostPool:
    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[_Connection] = []

    def take(self) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.usable:
                return connection
            connection.smtp.close()
        return None


@dataclass
class _LoopState:
    pools: dict[str, _HostPool] = field(default_factory=dict)
    enterprises: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    plain_only: set[str] = field(default_factory=set)
    closing: bool = False


class Pools:
    """Every event loop's connections of one transport; usable from many tasks at once."""

    def __init__(
        self,
        *,
        relay: Relay | None,
        timeout: float,
        local_hostname: str | None,
        per_host: int,
        per_enterprise: int,
    ) -> None:
        self.relay = relay
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.per_host = per_host
        self.per_enterprise = per_enterprise
        # Built on first use: a missing CA file must not stop a process that sends via outbox.
        self._relay_tls: ssl.SSLContext | None = None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def enterprise_slot(self, enterprise_id: str) -> asyncio.Semaphore:
        """Held while an envelope of that enterprise is in flight."""
        enterprises = self._state().enterprises
        slot = enterprises.get(enterprise_id)
        if slot is None:
            slot = enterprises[enterprise_id] = asyncio.Semaphore(self.per_enterprise)
        return slot

    async def deliver(
        self, route: Route, recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        """One transaction on a pooled or new connection; :class:`ConnectFailed` if none opens."""
        state = self._state()
        pool = state.pools.get(route.key)
        if pool is None:
            pool = state.pools[route.key] = _HostPool(self.per_host)
        async with pool.slots:
            connection = pool.take()
            if connection is not None:
                try:
                    return await self._use(pool, state, connection, recipients, envelope)
                except Stale:
                    pass  # the server dropped it while idle: a fresh one below
            connection = await self._connect(route, state)
            try:
                return await self._use(pool, state, connection, recipients, envelope)
            except Stale as exc:
                if not self._opportunistic(connection, route, state):
                    return dict.fromkeys(recipients, from_error(exc.__cause__ or exc))
            # With TLS 1.3 a server can reject the handshake after the client thinks it is done.
            connection = await self._connect(route, state)
            try:
                return await self._use(pool, state, connection, recipients, envelope)
            except Stale as exc:
                return dict.fromkeys(recipients, from_error(exc.__cause__ or exc))

    async def close(self) -> None:
        """Close pooled connections (QUIT on this loop's; others are dropped)."""
        current = self._current_loop()
        for loop, state in list(self._states.items()):
            state.closing = True
            for pool in state.pools.values():
                idle, pool.idle = pool.idle, []
                for connection in idle:
                    if loop is current:
                        await self._quit(connection)
                    elif not loop.is_closed():
                        loop.call_soon_threadsafe(connection.smtp.close)
            del self._states[loop]

    def _opportunistic(self, connection: _Connection, route: Route, state: _LoopState) -> bool:
        """Whether a fresh connection that died was direct-mode TLS: then go plain for this host."""
        if self.relay is not None or not connection.tls or route.key in state.plain_only:
            return False
        state.plain_only.add(route.key)
        return True

    async def _use(
        self,
        pool: _HostPool,
        state: _LoopState,
        connection: _Connection,
        recipients: list[str],
        envelope: Envelope,
    ) -> dict[str, DeliveryResult]:
        try:
            results = await transaction(connection.smtp, recipients, envelope)
        except Stale:
            connection.smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            connection.smtp.close()
            return dict.fromkeys(recipients, from_error(exc))
        except BaseException:
            connection.smtp.close()
            raise
        connection.messages += 1
        connection.idle_since = time.monotonic()
        if connection.usable and not state.closing:
            pool.idle.append(connection)
        else:
            await self._quit(connection)
        return results

    async def _connect(self, route: Route, state: _LoopState) -> _Connection:
        errors = []
        for address in route.addresses:
            try:
                smtp = await self._open(route, address, state)
                return _Connection(smtp, tls=smtp.get_transport_info("sslcontext") is not None)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                where = f"{address}: " if address != route.server_name else ""
                errors.append(where + from_error(exc).reply)
        raise ConnectFailed("; ".join(errors) or "no address")

    async def _open(self, route: Route, address: str, state: _LoopState) -> aiosmtplib.SMTP:
        relay = self.relay
        if relay is not None:
            if relay.mode != "plain" and self._relay_tls is None:
                self._relay_tls = relay.tls_context()
            smtp = aiosmtplib.SMTP(
                hostname=address,
                port=route.port,
                timeout=self.timeout,
                local_hostname=self.local_hostname,
                use_tls=relay.mode == "tls",
                start_tls=relay.mode == "starttls",
                tls_context=self._relay_tls,
                username=relay.username,
                password=relay.password,
            )
            await smtp.connect()
            return smtp
        plain = route.key in state.plain_only
        smtp = self._direct_client(address, route.port, start_tls=False if plain else None)
        try:
            await smtp.connect()
        except aiosmtplib.SMTPConnectError:
            raise  # no TCP connection or no 220 greeting: nothing to do with TLS
        except (ssl.SSLError, aiosmtplib.SMTPException):
            if plain:
                raise
            # Opportunistic TLS: a broken handshake must not stop delivery.
            state.plain_only.add(route.key)
            smtp = self._direct_client(address, route.port, start_tls=False)
            await smtp.connect()
        return smtp

    def _direct_client(self, address: str, port: int, *, start_tls: bool | None) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=address,
            port=port,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
            start_tls=start_tls,
            validate_certs=False,
        )

    async def _quit(self, connection: _Connection) -> None:
        try:
            if connection.smtp.is_connected:
                await connection.smtp.quit(timeout=min(self.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            connection.smtp.close()

    def _current_loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        return state
