"""Real loopback SMTP servers for tests of transports (partners reuse these).

``ScriptedSMTPServer`` runs aiosmtpd in a thread on 127.0.0.1 and records
every message; its handler can be scripted per recipient, can answer 421 and
hang up after N messages in one connection, can hang after DATA, and the
server can offer STARTTLS, implicit TLS and AUTH with a self-signed
certificate made at test time (direct MX delivery is tested against
``koomsg.testing.dns.LocalDnsServer``, the ``dns_server`` fixture)::

    tls = make_cert(tmp_path)
    with ScriptedSMTPServer(tls=tls) as smtp:
        smtp.handler.replies["gone@example.test"] = "550 5.1.1 user unknown"
        ...
        assert smtp.handler.messages[0].message_id == "<m1@shop.example>"

As pytest fixtures (from the ``koomsg.testing`` plugin): ``smtp_server`` (a
running server), ``make_smtp_server`` (one per call, with these keyword
arguments), ``smtp_tls`` (a certificate for them), ``smtp_transport`` (an
``SmtpTransport`` relaying to ``smtp_server``) and ``make_smtp_transport``
(one per call, from a URL and ``KOOMSG_*`` settings). Everything they start is
stopped after the test, transports before servers::

    async def test_pipelined(make_smtp_server, make_smtp_transport):
        server = make_smtp_server(handler=ScriptedHandler(pipelining=True))
        transport = make_smtp_transport(server.url, KOOMSG_SMTP_TIMEOUT="1")
        ...

Only loopback addresses are used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from koomsg.config import Settings, load_settings
from koomsg.plugins.builtin.smtp import SmtpTransport

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_cert(directory: Path, *, hostname: str = "localhost") -> TLSFiles:
    """A self-signed certificate for ``hostname`` and 127.0.0.1, written to ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "smtp-cert.pem", directory / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str | None
    connection: int
    tls: bool
    login: str | None


@dataclass
class ScriptedHandler:
    """Records messages; the public attributes script the replies (set them before sending).

    :ivar replies: recipient address (lower case) -> RCPT reply, e.g. ``"550 5.1.1 user unknown"``.
    :ivar data_reply: reply to the end of DATA instead of ``250``.
    :ivar close_after: answer ``421`` to MAIL and hang up once a connection carried this many.
    :ivar hang_after_data: never answer the end of DATA (tests the client's timeout).
    :ivar pipelining: advertise PIPELINING (RFC 2920) in the EHLO reply; aiosmtpd reads
        pipelined commands in order either way.
    :ivar batched: per MAIL command, whether a ``DATA`` command had already arrived with it,
        i.e. the client pipelined its envelope.
    """

    replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    close_after: int | None = None
    hang_after_data: bool = False
    pipelining: bool = False
    messages: list[ReceivedMessage] = field(default_factory=list)
    batched: list[bool] = field(default_factory=list)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _connection_number(self, server: SMTP) -> int:
        # One SMTP instance per TCP connection (it survives STARTTLS, the Session does not).
        number = getattr(server, "_koomsg_connection", None)
        if number is None:
            with self._lock:
                self.connections += 1
                number = self.connections
            server._koomsg_connection = number  # type: ignore[attr-defined]
            server._koomsg_messages = 0  # type: ignore[attr-defined]
        return int(number)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._connection_number(server)
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._connection_number(server)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self._connection_number(server)
        # Lines read ahead of this MAIL command wait in aiosmtpd's stream reader.
        pending = bytes(getattr(server._reader, "_buffer", b""))
        self.batched.append(b"DATA\r\n" in pending)
        if self.close_after is not None and server._koomsg_messages >= self.close_after:  # type: ignore[attr-defined]
            transport = server.transport
            assert transport is not None
            # Closed after the reply is written: asyncio flushes before closing.
            asyncio.get_running_loop().call_soon(transport.close)
            return "421 4.7.0 too many messages, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.replies.get(address.lower())
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return reply or "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hang_after_data:
            # The controller cancels this task when the server stops.
            await asyncio.sleep(3600)
        data = envelope.original_content or b""
        headers = BytesHeaderParser().parsebytes(data)
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        with self._lock:
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=data,
                    message_id=headers.get("Message-ID"),
                    connection=self._connection_number(server),
                    tls=_is_tls(server),
                    login=login,
                )
            )
            server._koomsg_messages += 1  # type: ignore[attr-defined]
        return self.data_reply or "250 2.0.0 OK queued"

    @property
    def recipients(self) -> list[str]:
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]


def _is_tls(server: SMTP) -> bool:
    # After STARTTLS aiosmtpd swaps in the TLS transport; implicit TLS has one from the start.
    transport = server.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


class _Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


class ScriptedSMTPServer:
    """An aiosmtpd server on loopback, in its own thread; use as a context manager.

    :param tls: offers STARTTLS with this certificate (or implicit TLS with ``implicit_tls``);
        ``tls_context`` replaces the context made from it (e.g. to make handshakes fail).
    :param users: enables AUTH PLAIN/LOGIN for these user -> password pairs (over TLS only,
        unless ``auth_require_tls`` is false); with ``auth_required`` mail needs a login.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        tls: TLSFiles | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: Mapping[str, str] | None = None,
        auth_required: bool = False,
        auth_require_tls: bool = True,
        handler: ScriptedHandler | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.handler = handler or ScriptedHandler()
        kwargs: dict[str, Any] = {"hostname": host, "port": self.port, "server_hostname": "mx.test"}
        context = tls_context or (tls.server_context() if tls is not None else None)
        if context is not None and implicit_tls:
            kwargs["ssl_context"] = context
        elif context is not None:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = require_starttls
        if users is not None:
            kwargs["authenticator"] = _Authenticator(users)
            kwargs["auth_required"] = auth_required
            # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS session is encrypted anyway.
            kwargs["auth_require_tls"] = auth_require_tls and not implicit_tls
        self._kwargs = kwargs
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    @property
    def url(self) -> str:
        """``smtp://host:port``: this server as a plain ``KOOMSG_SMTP_URL``."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> ScriptedSMTPServer:
        """Start serving; a stopped server can be started again on the same port."""
        if self._controller is None:
            # A controller's event loop is closed by stop(), so each start needs a new one.
            self._controller = Controller(self.handler, **self._kwargs)
            self._controller.start()
        # Controller.start() opens a probe connection; it never says EHLO, so it is not counted.
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> ScriptedSMTPServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- pytest fixtures (made visible by koomsg.testing.plugin) ----------------------


def transport_settings(data_dir: Path, **env: str) -> Settings:
    """Settings for a transport under test: no database, 2-second SMTP and DNS timeouts,
    and loopback allowed as a mail host (the test servers live there; pass
    ``KOOMSG_ALLOWED_PRIVATE_NETWORKS=""`` to test the refusal)."""
    base = {
        "KOOMSG_DATA_DIR": str(data_dir),
        "KOOMSG_SECRET_KEY": "x" * 32,
        "KOOMSG_TRANSPORT": "smtp",
        "KOOMSG_SMTP_TIMEOUT": "2",
        "KOOMSG_DNS_TIMEOUT": "2",
        "KOOMSG_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    return load_settings({**base, **env})


@pytest.fixture(scope="session")
def smtp_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for localhost and 127.0.0.1 (``make_smtp_server(tls=...)``)."""
    return make_cert(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., ScriptedSMTPServer]]:
    """Starts a ``ScriptedSMTPServer(**kwargs)`` per call; all are stopped after the test."""
    started: list[ScriptedSMTPServer] = []

    def make(**kwargs: Any) -> ScriptedSMTPServer:
        server = ScriptedSMTPServer(**kwargs).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., ScriptedSMTPServer]) -> ScriptedSMTPServer:
    """A running loopback SMTP server with a fresh handler: no TLS, AUTH or PIPELINING."""
    return make_smtp_server()


@pytest_asyncio.fixture
async def make_smtp_transport(
    tmp_path: Path, make_smtp_server: Callable[..., ScriptedSMTPServer]
) -> AsyncIterator[Callable[..., SmtpTransport]]:
    """``make(url=None, **env)``: an ``SmtpTransport`` relaying to ``url`` (None: direct MX).

    ``env`` holds more ``KOOMSG_*`` settings (see :func:`transport_settings`). Every
    transport is closed after the test, before the servers stop.
    """
    made: list[SmtpTransport] = []

    def make(url: str | None = None, **env: str) -> SmtpTransport:
        if url is not None:
            env = {"KOOMSG_SMTP_URL": url, **env}
        transport = SmtpTransport(transport_settings(tmp_path, **env))
        made.append(transport)
        return transport

    try:
        yield make
    finally:
        for transport in made:
            await transport.close()


@pytest.fixture
def smtp_transport(
    make_smtp_transport: Callable[..., SmtpTransport], smtp_server: ScriptedSMTPServer
) -> SmtpTransport:
    """An ``SmtpTransport`` relaying to ``smtp_server`` with default settings."""
    return make_smtp_transport(smtp_server.url)
