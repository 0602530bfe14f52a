"""The ``smtp`` transport: relay through one server, or deliver straight to each domain's MX.

Relay mode (``KOOMSG_SMTP_URL`` set)::

    smtp://host:25                    plain, no STARTTLS
    smtp+starttls://user:pass@host:587  STARTTLS required, then AUTH
    smtps://user:pass@host:465        implicit TLS, then AUTH

with optional query parameters ``tls_verify=0`` (accept any certificate) and
``cafile=/path/ca.pem`` (trust that CA, e.g. a test's self-signed one).

Direct mode (``KOOMSG_SMTP_URL`` unset): each recipient domain's MX hosts are
looked up with dnspython (``KOOMSG_DNS_NAMESERVERS``), tried in preference
order, falling back to the domain's own A/AAAA records when it has no MX, on
port ``KOOMSG_SMTP_DIRECT_PORT``; STARTTLS is used when offered, without
certificate checks (opportunistic TLS), and plain SMTP when the handshake
fails.

Connections are pooled per destination host and carry many messages
(``KOOMSG_SMTP_MAX_CONNECTIONS_PER_HOST``, default 10); at most
``KOOMSG_SMTP_MAX_CONCURRENCY_PER_ENTERPRISE`` (default 50) envelopes of one
enterprise are in flight at once; ``KOOMSG_SMTP_TIMEOUT`` (seconds, default
30) bounds connecting, each command and DATA. Pools belong to the running
event loop (dramatiq's AsyncIO middleware runs one per worker process) and
connect lazily.

When the server advertises PIPELINING (RFC 2920), MAIL FROM, every RCPT TO
and DATA go out in one write and their replies are read back in order, then
the message; otherwise, and until EHLO was said on the connection (by its
first message, or while connecting for STARTTLS or AUTH), each command waits
for its reply.

Outcomes per recipient: 2xx is ACCEPTED, 5xx PERMANENT_FAILURE with the
server's reply, 4xx, timeouts and dropped connections TEMPORARY_FAILURE. A
421 closes that connection. ``send_many`` returns one result per envelope
recipient; ``send`` folds them into one (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import re
import ssl
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import aiosmtplib.protocol
import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from aiosmtplib.email import quote_address

from koomsg.config import ConfigError, Settings
from koomsg.core.clock import utcnow
from koomsg.plugins import hookimpl
from koomsg.plugins.types import DeliveryResult, DeliveryStatus, Envelope, Transport

# Many receivers cap messages per connection; reconnecting a little early is cheap.
MAX_MESSAGES_PER_CONNECTION = 100
# Receivers commonly drop idle clients after a minute or so; do not reuse older ones.
IDLE_SECONDS = 30.0


def _from_reply(code: int, message: str) -> DeliveryResult:
    reply = f"{code} {' '.join(message.split())}".strip()
    if 200 <= code < 300:
        return DeliveryResult(DeliveryStatus.ACCEPTED, reply, code, utcnow())
    if 500 <= code < 600:
        return DeliveryResult.permanent(reply, code)
    return DeliveryResult.temporary(reply, code)


def _from_error(error: BaseException) -> DeliveryResult:
    if isinstance(error, aiosmtplib.SMTPResponseException) and error.code >= 400:
        return _from_reply(error.code, error.message)
    if isinstance(error, TimeoutError):
        return DeliveryResult.temporary(f"timed out: {error}")
    return DeliveryResult.temporary(f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class Relay:
    """A parsed ``KOOMSG_SMTP_URL``."""

    host: str
    port: int
    mode: str  # "plain", "starttls" or "tls"
    username: str | None
    password: str | None
    verify: bool
    cafile: str | None

    @classmethod
    def parse(cls, url: str) -> Relay:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        mode = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}.get(scheme)
        if mode is None:
            expected = "smtp://, smtp+starttls:// or smtps://"
            raise ConfigError("KOOMSG_SMTP_URL", f"unsupported scheme {parts.scheme!r}: {expected}")
        query = parse_qs(parts.query)
        default_port = {"plain": 25, "starttls": 587, "tls": 465}[mode]
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            mode=mode,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            verify=query.get("tls_verify", ["1"])[-1].lower() not in {"0", "false", "no"},
            cafile=query.get("cafile", [None])[-1],
        )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class _Route:
    """Where to connect: a pool key, candidate addresses, and how to talk."""

    key: str
    server_name: str
    addresses: tuple[str, ...]
    port: int


class _ConnectFailed(Exception):
    """No address of a host would talk to us; the next MX may."""


class _Stale(Exception):
    """A pooled connection turned out to be closed before the transaction began."""


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


# A plain dot-atom address, which quote_address() (email.utils parsing) returns unchanged.
_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _command(verb: bytes, address: str) -> bytes:
    """``MAIL FROM:<address>`` or ``RCPT TO:<address>``, quoted and checked as aiosmtplib does."""
    # Parsing every address with email.utils costs about as much as the rest of the exchange.
    if _DOT_ATOM.fullmatch(address):
        return verb + b"<" + address.encode("ascii") + b">\r\n"
    quoted = quote_address(address).encode("ascii")
    if aiosmtplib.protocol.COMMAND_INJECTION_REGEX.search(quoted):
        raise ValueError("Command arg contains a prohibited control character")
    return verb + quoted + b"\r\n"


def _data_payload(data: bytes) -> bytes:
    """The message as ``SMTP.data()`` sends it: CRLF line endings, dot-stuffed, ``.`` ending."""
    message = aiosmtplib.protocol.normalize_message_line_endings(data)
    return aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", message) + b".\r\n"


class _PipelineReader(asyncio.Protocol):
    """Takes the transport's replies while a pipelined batch (RFC 2920) is in flight.

    aiosmtplib's protocol parses one reply per command it wrote and drops bytes
    that arrive while no command waits for them, so replies to commands written
    together would be lost there. This keeps every byte and hands out replies in
    order; connection loss and flow control are passed on to aiosmtplib's
    protocol, so its client still closes itself on a dropped connection.
    """

    def __init__(self, inner: aiosmtplib.protocol.SMTPProtocol) -> None:
        self.inner = inner
        self.buffer = bytearray()
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # let the transport close, as aiosmtplib does

    def connection_lost(self, exc: Exception | None) -> None:
        error = aiosmtplib.SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._fail(error)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def ready(self) -> aiosmtplib.SMTPResponse | None:
        """The next reply if it has arrived whole, else None."""
        return self._parse()

    async def reply(self) -> aiosmtplib.SMTPResponse:
        """The next reply, once it is complete."""
        while (reply := self._parse()) is None:
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return reply

    def _parse(self) -> aiosmtplib.SMTPResponse | None:
        # The reply format aiosmtplib reads: "250-first line", ..., "250 last line".
        lines: list[bytes] = []
        offset = 0
        while (end := self.buffer.find(b"\n", offset)) != -1:
            line = bytes(self.buffer[offset : end + 1])
            offset = end + 1
            if not line[:3].isdigit():
                text = line.decode("utf-8", errors="ignore")
                raise aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response line: {text}")
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                del self.buffer[:offset]
                message = b"\n".join(lines).decode("utf-8", "surrogateescape")
                return aiosmtplib.SMTPResponse(int(line[:3]), message)
        if len(self.buffer) > aiosmtplib.protocol.MAX_RESPONSE_LENGTH:
            raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        return None


@dataclass
class _LoopState:
    pools: dict[str, _HostPool] = field(default_factory=dict)
    enterprises: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    plain_only: set[str] = field(default_factory=set)
    closing: bool = False


class SmtpTransport:
    """Delivers envelopes over SMTP; see the module docstring for modes and settings.

    Usable from many asyncio tasks at once; every event loop gets its own pools.
    """

    name = "smtp"

    def __init__(
        self, settings: Settings, *, resolver: dns.asyncresolver.Resolver | None = None
    ) -> None:
        self.settings = settings
        self.relay = Relay.parse(settings.smtp_url) if settings.smtp_url else None
        self.timeout = settings.smtp_timeout_seconds
        self.local_hostname = settings.extra.get("KOOMSG_SMTP_HELO_NAME") or None
        self._resolver = resolver
        # Built on first use: a missing CA file must not stop a process that sends via outbox.
        self._relay_tls: ssl.SSLContext | None = None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    # -- public API ---------------------------------------------------------

    async def send(self, envelope: Envelope) -> DeliveryResult:
        """One result for the envelope.

        With one recipient, that recipient's result. With several: ACCEPTED
        when all were accepted, else the first temporary failure (so the
        message is retried), else the first permanent failure. Use
        :meth:`send_many` to act per recipient.
        """
        results = await self.send_many(envelope)
        ordered = [results[r] for r in envelope.recipients]
        if not ordered:
            return DeliveryResult.permanent("no recipients")
        for status in (DeliveryStatus.TEMPORARY_FAILURE, DeliveryStatus.PERMANENT_FAILURE):
            for result in ordered:
                if result.status is status:
                    return result
        return ordered[0]

    async def send_many(self, envelope: Envelope) -> dict[str, DeliveryResult]:
        """A result per envelope recipient, keyed by the address as given.

        In one SMTP transaction per destination, the server may accept some
        recipients (250), defer others (451) and refuse others (550): only the
        temporary ones need a retry.
        """
        state = self._state()
        slot = state.enterprises.get(envelope.enterprise_id)
        if slot is None:
            slot = state.enterprises[envelope.enterprise_id] = asyncio.Semaphore(
                self.settings.smtp_max_concurrency_per_enterprise
            )
        async with slot:
            if self.relay is not None:
                route = _Route("relay", self.relay.host, (self.relay.host,), self.relay.port)
                return await self._deliver_routes([route], list(envelope.recipients), envelope)
            by_domain: dict[str, list[str]] = {}
            for recipient in envelope.recipients:
                by_domain.setdefault(recipient.rpartition("@")[2].lower(), []).append(recipient)
            results: dict[str, DeliveryResult] = {}
            for part in await asyncio.gather(
                *(
                    self._deliver_direct(domain, rcpts, envelope)
                    for domain, rcpts in by_domain.items()
                )
            ):
                results.update(part)
            return results

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

    # -- routing --------------------------------------------------------------

    async def _deliver_direct(
        self, domain: str, recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        if not domain:
            return dict.fromkeys(
                recipients, DeliveryResult.permanent("501 5.1.3 bad recipient address")
            )
        hosts = await self._mx_hosts(domain)
        if isinstance(hosts, DeliveryResult):
            return dict.fromkeys(recipients, hosts)
        routes = []
        for host in hosts:
            addresses = await self._addresses(host)
            if addresses:
                routes.append(
                    _Route(
                        f"{host}:{self.settings.smtp_direct_port}",
                        host,
                        addresses,
                        self.settings.smtp_direct_port,
                    )
                )
        if not routes:
            return dict.fromkeys(
                recipients,
                DeliveryResult.temporary(f"no address found for any mail host of {domain}"),
            )
        return await self._deliver_routes(routes, recipients, envelope)

    async def _deliver_routes(
        self, routes: Sequence[_Route], recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        failures = []
        for route in routes:
            try:
                return await self._deliver_to(route, recipients, envelope)
            except _ConnectFailed as exc:
                failures.append(f"{route.server_name}: {exc}")
        reply = "could not connect: " + "; ".join(failures)
        return dict.fromkeys(recipients, DeliveryResult.temporary(reply))

    async def _mx_hosts(self, domain: str) -> list[str] | DeliveryResult:
        resolver = self._get_resolver()
        try:
            answer = await resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            return DeliveryResult.permanent(f"550 5.1.2 domain {domain} does not exist")
        except dns.resolver.NoAnswer:
            return [domain]
        except (dns.exception.DNSException, ValueError) as exc:
            return DeliveryResult.temporary(f"DNS lookup of MX for {domain} failed: {exc}")
        records = sorted(answer, key=lambda rr: (rr.preference, random.random()))  # type: ignore[attr-defined]
        hosts = [
            rr.exchange.to_text(omit_final_dot=True)
            for rr in records
            if rr.exchange != dns.name.root
        ]  # type: ignore[attr-defined]
        if not hosts:
            return DeliveryResult.permanent(f"556 5.1.10 {domain} accepts no mail (null MX)")
        return hosts

    async def _addresses(self, host: str) -> tuple[str, ...]:
        with contextlib.suppress(ValueError):
            return (str(ipaddress.ip_address(host.strip("[]"))),)
        resolver = self._get_resolver()
        found: list[str] = []
        # IPv4 first: IPv6 routes from servers are more often broken than absent.
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(host, rdtype)
            except (dns.exception.DNSException, ValueError):
                continue
            found.extend(rr.address for rr in answer)  # type: ignore[attr-defined]
        return tuple(found)

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.settings.dns_nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host, port)
                    for host, port in self.settings.dns_nameservers
                ]
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.lifetime = self.settings.dns_timeout_seconds
            resolver.cache = dns.resolver.Cache()
            self._resolver = resolver
        return self._resolver

    # -- connections ------------------------------------------------------------

    async def _deliver_to(
        self, route: _Route, recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        state = self._state()
        pool = state.pools.get(route.key)
        if pool is None:
            pool = state.pools[route.key] = _HostPool(self.settings.smtp_max_connections_per_host)
        async with pool.slots:
            connection = pool.take()
            if connection is not None:
                try:
                    return await self._use(pool, state, connection, recipients, envelope)
                except _Stale:
                    pass  # the server dropped it while idle: a fresh one below
            connection = await self._connect(route, state)
            try:
                return await self._use(pool, state, connection, recipients, envelope)
            except _Stale as exc:
                if not self._opportunistic(connection, route, state):
                    return dict.fromkeys(recipients, _from_error(exc.__cause__ or exc))
            # With TLS 1.3 a server can reject the handshake after the client thinks it is done.
            connection = await self._connect(route, state)
            try:
                return await self._use(pool, state, connection, recipients, envelope)
            except _Stale as exc:
                return dict.fromkeys(recipients, _from_error(exc.__cause__ or exc))

    def _opportunistic(self, connection: _Connection, route: _Route, state: _LoopState) -> bool:
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
            results = await self._transaction(connection.smtp, recipients, envelope)
        except _Stale:
            connection.smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            connection.smtp.close()
            return dict.fromkeys(recipients, _from_error(exc))
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

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        # Extensions are known once EHLO was said on this connection.
        if smtp.is_connected and smtp.supports_extension("pipelining"):
            pipelined = await self._pipelined(smtp, recipients, envelope)
            if pipelined is not None:
                outcome, refused = pipelined
                if refused:
                    await self._reset(smtp)
                return outcome
        try:
            await smtp.mail(envelope.mail_from)
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _Stale() from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            await self._reset(smtp)
            return dict.fromkeys(recipients, _from_reply(exc.code, exc.message))
        results: dict[str, DeliveryResult] = {}
        accepted = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                results[recipient] = _from_reply(exc.code, exc.message)
                if exc.code == 421:
                    raise
            else:
                accepted.append(recipient)
        if not accepted:
            await self._reset(smtp)
            return results
        try:
            response = await smtp.data(envelope.data)
        except aiosmtplib.SMTPDataError as exc:
            await self._reset(smtp)
            results.update(dict.fromkeys(accepted, _from_reply(exc.code, exc.message)))
            return results
        results.update(dict.fromkeys(accepted, _from_reply(response.code, response.message)))
        return results

    async def _pipelined(
        self, smtp: aiosmtplib.SMTP, recipients: list[str], envelope: Envelope
    ) -> tuple[dict[str, DeliveryResult], bool] | None:
        """The transaction of :meth:`_transaction` with MAIL, RCPT and DATA written at once.

        Same outcomes as command by command; also says whether the transaction
        was refused, so that the session is reset before reuse. None when the
        connection is not wired as expected: then go command by command.
        """
        batch = b"".join(
            [
                _command(b"MAIL FROM:", envelope.mail_from),
                *(_command(b"RCPT TO:", recipient) for recipient in recipients),
                b"DATA\r\n",
            ]
        )
        protocol = smtp.protocol
        transport = protocol.transport if protocol is not None else None
        if protocol is None or transport is None or transport.get_protocol() is not protocol:
            return None
        reader = _PipelineReader(protocol)
        transport.set_protocol(reader)
        try:
            return await self._pipeline(
                smtp, cast(asyncio.WriteTransport, transport), reader, batch, recipients, envelope
            )
        finally:
            if transport.get_protocol() is reader:
                transport.set_protocol(protocol)

    async def _pipeline(
        self,
        smtp: aiosmtplib.SMTP,
        transport: asyncio.WriteTransport,
        reader: _PipelineReader,
        batch: bytes,
        recipients: list[str],
        envelope: Envelope,
    ) -> tuple[dict[str, DeliveryResult], bool]:
        timeout = smtp.timeout
        transport.write(batch)

        async def reply() -> aiosmtplib.SMTPResponse:
            # Each reply gets the whole timeout, as each command does in aiosmtplib; replies
            # to a batch mostly arrive together, and one already here needs no timer.
            response = reader.ready()
            if response is None:
                try:
                    async with asyncio.timeout(timeout):
                        response = await reader.reply()
                except TimeoutError as exc:
                    if isinstance(exc, aiosmtplib.SMTPException):
                        raise
                    raise aiosmtplib.SMTPReadTimeoutError(
                        "Timed out waiting for server response"
                    ) from exc
            if response.code == 421:
                smtp.close()  # the server is going away, as aiosmtplib does on 421
            return response

        try:
            mail = await reply()
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise _Stale() from exc
        results: dict[str, DeliveryResult] = {}
        accepted = []
        if mail.code != 250:
            results = dict.fromkeys(recipients, _from_reply(mail.code, mail.message))
            if mail.code == 421:
                return results, True
        for recipient in recipients:
            response = await reply()
            if mail.code != 250:
                # Each RCPT gets "503 need MAIL"; the sender's refusal says it all.
                if response.code == 421:
                    return results, True
                continue
            if response.code in (250, 251):
                accepted.append(recipient)
                continue
            results[recipient] = _from_reply(response.code, response.message)
            if response.code == 421:
                raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
        data = await reply()
        if data.code != 354:
            results.update(dict.fromkeys(accepted, _from_reply(data.code, data.message)))
            return results, True
        if not accepted:
            # RFC 2920: a server accepting DATA without recipients gets an empty message.
            transport.write(b".\r\n")
            await reply()
            return results, True
        transport.write(_data_payload(envelope.data))
        done = await reply()
        results.update(dict.fromkeys(accepted, _from_reply(done.code, done.message)))
        return results, done.code != 250

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        # Only after a refused transaction: a completed DATA leaves the session clean.
        if not smtp.is_connected:
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()

    async def _connect(self, route: _Route, state: _LoopState) -> _Connection:
        errors = []
        for address in route.addresses:
            try:
                smtp = await self._open(route, address, state)
                return _Connection(smtp, tls=smtp.get_transport_info("sslcontext") is not None)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                where = f"{address}: " if address != route.server_name else ""
                errors.append(where + _from_error(exc).reply)
        raise _ConnectFailed("; ".join(errors) or "no address")

    async def _open(self, route: _Route, address: str, state: _LoopState) -> aiosmtplib.SMTP:
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


@hookimpl
def koomsg_transports(settings: Settings) -> Sequence[Transport]:
    return [SmtpTransport(settings)]
