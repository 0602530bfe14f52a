"""The smtp transport against real aiosmtpd and DNS servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from koomsg.config import ConfigError
from koomsg.core.delivery.bounces import is_hard_bounce
from koomsg.core.delivery.mime import MessageSkeleton
from koomsg.plugins.builtin.smtp import Relay, SmtpTransport
from koomsg.plugins.builtin.smtp.protocol import PipelineReader
from koomsg.plugins.manager import make_manager
from koomsg.plugins.types import DeliveryResult, DeliveryStatus, Envelope
from koomsg.testing.dns import LocalDnsServer
from koomsg.testing.smtp import (
    ScriptedHandler,
    ScriptedSMTPServer,
    TLSFiles,
    free_port,
    transport_settings,
)

# The koomsg.testing fixtures: make_smtp_server(**kwargs) and make_smtp_transport(url, **env)
# start servers and transports that are stopped and closed after the test.
MakeServer = Callable[..., ScriptedSMTPServer]
MakeTransport = Callable[..., SmtpTransport]

SKELETON = MessageSkeleton.build(
    sender_address="news@shop.example", sender_alias="Shop", feedback_id="t1:e1:koomsg"
)


def envelope(number: int, *recipients: str, enterprise: str = "ent1") -> Envelope:
    to = recipients[0] if recipients else "ann@example.test"
    data = SKELETON.fill(
        message_id=f"m{number}",
        sender_domain="shop.example",
        to=to,
        subject=f"Message {number}",
        text="Hello\n.\nbye",
        html=None,
    )
    return Envelope(
        message_id=f"m{number}",
        enterprise_id=enterprise,
        mail_from="bounce@shop.example",
        recipients=tuple(recipients or (to,)),
        data=data,
        rfc_message_id=f"<m{number}@shop.example>",
    )


@pytest.fixture(params=[False, True], ids=["sequential", "pipelining"])
def smtp_server(request: pytest.FixtureRequest, make_smtp_server: MakeServer) -> ScriptedSMTPServer:
    # Every test runs against a server without and with PIPELINING (RFC 2920); the
    # plugin's smtp_transport relays to this one.
    return make_smtp_server(handler=ScriptedHandler(pipelining=request.param))


only_pipelining = pytest.mark.parametrize("smtp_server", [True], ids=["pipelining"], indirect=True)


# -- relay mode ---------------------------------------------------------------


async def test_relay_delivers_and_records_the_message(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    sent = envelope(1)
    result = await smtp_transport.send(sent)
    assert result.status is DeliveryStatus.ACCEPTED
    assert result.code == 250 and result.accepted_at is not None
    assert result.reply.startswith("250")
    [message] = smtp_server.messages
    assert message.mail_from == "bounce@shop.example"
    assert message.rcpt_tos == ("ann@example.test",)
    assert message.message_id == "<m1@shop.example>"
    assert message.data == sent.data and not message.tls


async def test_starttls_with_auth(
    make_smtp_server: MakeServer, make_smtp_transport: MakeTransport, smtp_tls: TLSFiles
) -> None:
    server = make_smtp_server(tls=smtp_tls, require_starttls=True, users={"ann": "s3cret"})
    url = f"smtp+starttls://ann:s3cret@{server.host}:{server.port}?cafile={smtp_tls.cert}"
    result = await make_smtp_transport(url).send(envelope(1))
    assert result.status is DeliveryStatus.ACCEPTED, result
    [message] = server.messages
    assert message.tls and message.login == "ann"


async def test_starttls_refuses_an_unverified_certificate(
    make_smtp_server: MakeServer, make_smtp_transport: MakeTransport, smtp_tls: TLSFiles
) -> None:
    server = make_smtp_server(tls=smtp_tls)
    result = await make_smtp_transport(f"smtp+starttls://{server.host}:{server.port}").send(
        envelope(1)
    )
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "certificate" in result.reply.lower()
    assert server.messages == []


async def test_implicit_tls_with_auth(
    make_smtp_server: MakeServer, make_smtp_transport: MakeTransport, smtp_tls: TLSFiles
) -> None:
    server = make_smtp_server(tls=smtp_tls, implicit_tls=True, users={"ann": "s3cret"})
    url = f"smtps://ann:s3cret@{server.host}:{server.port}?tls_verify=0"
    result = await make_smtp_transport(url).send(envelope(1))
    assert result.status is DeliveryStatus.ACCEPTED, result
    assert server.messages[0].tls and server.messages[0].login == "ann"


async def test_wrong_password_is_a_temporary_failure(
    make_smtp_server: MakeServer, make_smtp_transport: MakeTransport, smtp_tls: TLSFiles
) -> None:
    server = make_smtp_server(tls=smtp_tls, users={"ann": "s3cret"}, auth_required=True)
    url = f"smtp+starttls://ann:wrong@{server.host}:{server.port}?tls_verify=0"
    result = await make_smtp_transport(url).send(envelope(1))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "535" in result.reply
    assert server.messages == []


async def test_per_recipient_results_in_one_transaction(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.replies["later@example.test"] = "451 4.3.0 try later"
    smtp_server.handler.replies["gone@example.test"] = "550 5.1.1 <gone@example.test>: user unknown"
    sent = envelope(1, "ann@example.test", "later@example.test", "gone@example.test")
    results = await smtp_transport._send_many(sent)
    assert results["ann@example.test"].status is DeliveryStatus.ACCEPTED
    later, gone = results["later@example.test"], results["gone@example.test"]
    assert later.status is DeliveryStatus.TEMPORARY_FAILURE and later.code == 451
    assert later.reply == "451 4.3.0 try later"
    assert gone.status is DeliveryStatus.PERMANENT_FAILURE and gone.code == 550
    assert gone.reply == "550 5.1.1 <gone@example.test>: user unknown"
    assert is_hard_bounce(gone) and not is_hard_bounce(later)
    [message] = smtp_server.messages
    assert message.rcpt_tos == ("ann@example.test",)
    # send() folds them so that the message is retried.
    assert (await smtp_transport.send(sent)).status is DeliveryStatus.TEMPORARY_FAILURE


async def test_all_recipients_refused_resets_and_reuses_the_connection(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.replies["gone@example.test"] = "550 5.1.1 user unknown"
    refused = await smtp_transport.send(envelope(1, "gone@example.test"))
    assert refused.status is DeliveryStatus.PERMANENT_FAILURE
    assert (await smtp_transport.send(envelope(2))).status is DeliveryStatus.ACCEPTED
    assert smtp_server.handler.connections == 1
    assert [m.message_id for m in smtp_server.messages] == ["<m2@shop.example>"]


async def test_data_refusal_is_per_accepted_recipient(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.data_reply = "554 5.7.1 message rejected as spam"
    result = await smtp_transport.send(envelope(1))
    assert result.status is DeliveryStatus.PERMANENT_FAILURE
    assert result.reply == "554 5.7.1 message rejected as spam"
    assert not is_hard_bounce(result)


async def test_421_closes_the_connection_and_later_messages_reconnect(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.close_after = 2
    results = [await smtp_transport.send(envelope(n)) for n in range(1, 6)]
    statuses = [r.status for r in results]
    assert statuses == [
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.ACCEPTED,
    ]
    assert results[2].code == 421 and results[2].reply.startswith("421")
    assert smtp_server.handler.connections == 2
    assert [m.connection for m in smtp_server.messages] == [1, 1, 2, 2]


@only_pipelining
async def test_pipelining_sends_the_envelope_in_one_write(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.replies["later@example.test"] = "451 4.3.0 try later"
    smtp_server.handler.replies["gone@example.test"] = "550 5.1.1 <gone@example.test>: user unknown"
    # A connection's first message says EHLO and goes command by command.
    assert (await smtp_transport.send(envelope(1))).status is DeliveryStatus.ACCEPTED
    sent = envelope(2, "ann@example.test", "later@example.test", "gone@example.test", "bo@x.test")
    results = await smtp_transport._send_many(sent)
    assert smtp_server.handler.batched == [False, True]
    assert results["ann@example.test"].status is DeliveryStatus.ACCEPTED
    assert results["ann@example.test"].reply == "250 2.0.0 OK queued"
    assert results["bo@x.test"] == results["ann@example.test"]
    later, gone = results["later@example.test"], results["gone@example.test"]
    assert later.status is DeliveryStatus.TEMPORARY_FAILURE and later.code == 451
    assert later.reply == "451 4.3.0 try later"
    assert gone.status is DeliveryStatus.PERMANENT_FAILURE and gone.code == 550
    assert gone.reply == "550 5.1.1 <gone@example.test>: user unknown"
    assert is_hard_bounce(gone)
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ("ann@example.test",),
        ("ann@example.test", "bo@x.test"),
    ]
    # The message went through DATA intact (dot-stuffed on the wire, unstuffed by the server).
    assert smtp_server.messages[1].data == sent.data
    assert smtp_server.handler.connections == 1


@only_pipelining
async def test_pipelined_refusals_reset_and_reuse_the_connection(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.replies["gone@example.test"] = "550 5.1.1 user unknown"
    smtp_server.handler.replies["full@example.test"] = "452 4.2.2 mailbox full"
    assert (await smtp_transport.send(envelope(1))).status is DeliveryStatus.ACCEPTED
    refused = await smtp_transport._send_many(envelope(2, "gone@example.test", "full@example.test"))
    assert refused["gone@example.test"].status is DeliveryStatus.PERMANENT_FAILURE
    assert refused["full@example.test"].status is DeliveryStatus.TEMPORARY_FAILURE
    assert refused["full@example.test"].reply == "452 4.2.2 mailbox full"
    smtp_server.handler.data_reply = "554 5.7.1 message rejected as spam"
    spam = await smtp_transport.send(envelope(3))
    assert spam.status is DeliveryStatus.PERMANENT_FAILURE
    assert spam.reply == "554 5.7.1 message rejected as spam"
    smtp_server.handler.data_reply = None
    assert (await smtp_transport.send(envelope(4))).status is DeliveryStatus.ACCEPTED
    assert smtp_server.handler.batched == [False, True, True, True]
    assert smtp_server.handler.connections == 1
    assert [m.message_id for m in smtp_server.messages] == [
        "<m1@shop.example>",
        "<m3@shop.example>",
        "<m4@shop.example>",
    ]


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_pipelining_over_tls(
    make_smtp_server: MakeServer, make_smtp_transport: MakeTransport, smtp_tls: TLSFiles, mode: str
) -> None:
    handler = ScriptedHandler(pipelining=True)
    implicit = mode == "implicit"
    server = make_smtp_server(
        tls=smtp_tls, implicit_tls=implicit, users={"ann": "s3cret"}, handler=handler
    )
    scheme = "smtps" if implicit else "smtp+starttls"
    url = f"{scheme}://ann:s3cret@{server.host}:{server.port}?cafile={smtp_tls.cert}"
    transport = make_smtp_transport(url)
    results = [await transport.send(envelope(n)) for n in range(3)]
    assert all(r.status is DeliveryStatus.ACCEPTED for r in results), results
    # AUTH said EHLO over TLS already: even the first message is pipelined.
    assert handler.batched == [True, True, True]
    assert all(m.tls and m.login == "ann" for m in server.messages)
    assert handler.connections == 1


async def test_pipelined_replies_arriving_together_or_in_pieces() -> None:
    # smtp-sink answers a whole batch in one segment; aiosmtpd reply by reply.
    from aiosmtplib.protocol import SMTPProtocol

    reader = PipelineReader(SMTPProtocol())
    reader.data_received(b"250 2.1.0 Ok\r\n250-2.1.5 Ok\r\n250 more\r\n35")
    assert [await reader.reply() for _ in range(2)] == [(250, "2.1.0 Ok"), (250, "2.1.5 Ok\nmore")]
    assert reader.ready() is None
    pending = asyncio.ensure_future(reader.reply())
    await asyncio.sleep(0)
    reader.data_received(b"4 End data with <CR><LF>.<CR><LF>\r")
    await asyncio.sleep(0)
    assert not pending.done()
    reader.data_received(b"\n451 4.3.0 later\r\n")
    assert await pending == (354, "End data with <CR><LF>.<CR><LF>")
    reader.connection_lost(None)
    assert await reader.reply() == (451, "4.3.0 later")  # what came before the hang-up still counts
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await reader.reply()


@only_pipelining
async def test_a_pipelined_421_closes_the_connection(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.close_after = 2
    results = [
        await smtp_transport.send(envelope(n, "ann@example.test", "bo@x.test")) for n in range(4)
    ]
    assert [r.status for r in results] == [
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.ACCEPTED,
    ]
    assert results[2].code == 421
    assert smtp_server.handler.batched == [False, True, True, False]
    assert [m.connection for m in smtp_server.messages] == [1, 1, 2]


@only_pipelining
async def test_a_server_hanging_after_pipelined_data_is_a_temporary_failure(
    make_smtp_transport: MakeTransport, smtp_server: ScriptedSMTPServer
) -> None:
    transport = make_smtp_transport(smtp_server.url, KOOMSG_SMTP_TIMEOUT="1")
    assert (await transport.send(envelope(1))).status is DeliveryStatus.ACCEPTED
    smtp_server.handler.hang_after_data = True
    started = time.monotonic()
    result = await transport.send(envelope(2))
    assert time.monotonic() - started < 3
    smtp_server.handler.hang_after_data = False
    # The timed-out connection is dropped, not reused.
    assert (await transport.send(envelope(3))).status is DeliveryStatus.ACCEPTED
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "timed out" in result.reply.lower()
    assert smtp_server.handler.connections == 2


async def test_a_server_hanging_after_data_is_a_temporary_failure(
    make_smtp_transport: MakeTransport, smtp_server: ScriptedSMTPServer
) -> None:
    smtp_server.handler.hang_after_data = True
    transport = make_smtp_transport(smtp_server.url, KOOMSG_SMTP_TIMEOUT="1")
    started = time.monotonic()
    result = await transport.send(envelope(1))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "timed out" in result.reply.lower()
    assert time.monotonic() - started < 3


async def test_connections_are_reused_within_the_pool_bound(
    make_smtp_transport: MakeTransport, smtp_server: ScriptedSMTPServer
) -> None:
    transport = make_smtp_transport(smtp_server.url, KOOMSG_SMTP_MAX_CONNECTIONS_PER_HOST="3")
    results = await asyncio.gather(*(transport.send(envelope(n)) for n in range(60)))
    assert all(r.status is DeliveryStatus.ACCEPTED for r in results)
    assert len(smtp_server.messages) == 60
    assert 1 <= smtp_server.handler.connections <= 3
    assert {m.message_id for m in smtp_server.messages} == {
        f"<m{n}@shop.example>" for n in range(60)
    }


async def test_enterprise_concurrency_is_bounded(
    make_smtp_transport: MakeTransport, smtp_server: ScriptedSMTPServer
) -> None:
    transport = make_smtp_transport(smtp_server.url, KOOMSG_SMTP_MAX_CONCURRENCY_PER_ENTERPRISE="1")
    results = await asyncio.gather(*(transport.send(envelope(n)) for n in range(10)))
    assert all(r.status is DeliveryStatus.ACCEPTED for r in results)
    assert smtp_server.handler.connections == 1


async def test_connection_refused_is_temporary(make_smtp_transport: MakeTransport) -> None:
    port = free_port()
    result = await make_smtp_transport(f"smtp://127.0.0.1:{port}").send(envelope(1))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "could not connect" in result.reply


async def test_a_closed_idle_connection_is_replaced(
    smtp_transport: SmtpTransport, smtp_server: ScriptedSMTPServer
) -> None:
    assert (await smtp_transport.send(envelope(1))).status is DeliveryStatus.ACCEPTED
    # Restart the server on the same port: the pooled connection is now dead.
    smtp_server.stop()
    smtp_server.start()
    await asyncio.sleep(0.05)
    assert (await smtp_transport.send(envelope(2))).status is DeliveryStatus.ACCEPTED
    assert smtp_server.handler.connections == 2


# -- direct mode ----------------------------------------------------------------


ZONE = [
    "example.test. 60 IN MX 10 mx1.example.test.",
    "mx1.example.test. 60 IN A 127.0.0.1",
    # Listed out of order on purpose; 127.0.0.2 and .3 refuse connections.
    "pref.test. 60 IN MX 20 backup.pref.test.",
    "pref.test. 60 IN MX 10 dead.pref.test.",
    "pref.test. 60 IN MX 30 never.pref.test.",
    "dead.pref.test. 60 IN A 127.0.0.2",
    "backup.pref.test. 60 IN A 127.0.0.1",
    "never.pref.test. 60 IN A 127.0.0.3",
    "nomx.test. 60 IN A 127.0.0.1",
    "nomx.test. 60 IN TXT nothing",
    "a.test. 60 IN MX 10 mx.a.test.",
    "mx.a.test. 60 IN A 127.0.0.1",
    "b.test. 60 IN A 127.0.0.1",
    "c.test. 60 IN MX 0 .",
    "down.test. 60 IN MX 10 dead.down.test.",
    "dead.down.test. 60 IN A 127.0.0.2",
    # A tenant pointing its recipients' MX at koomsg's own host and network.
    "ssrf.test. 60 IN MX 10 mx.ssrf.test.",
    "ssrf.test. 60 IN MX 20 mx2.ssrf.test.",
    "ssrf.test. 60 IN MX 30 mx3.ssrf.test.",
    "mx.ssrf.test. 60 IN A 127.0.0.1",
    "mx2.ssrf.test. 60 IN A 10.0.0.1",
    "mx3.ssrf.test. 60 IN A 169.254.169.254",
    "mx3.ssrf.test. 60 IN AAAA ::ffff:7f00:1",
]


DeliverDirect = Callable[..., Awaitable[dict[str, DeliveryResult]]]


@pytest.fixture
def deliver_direct(make_smtp_transport: MakeTransport, dns_server: LocalDnsServer) -> DeliverDirect:
    """``await deliver_direct(server, *recipients)``: results of one envelope in direct mode."""
    dns_server.set_zone(ZONE)

    async def deliver(server: ScriptedSMTPServer, *recipients: str) -> dict[str, DeliveryResult]:
        transport = make_smtp_transport(
            KOOMSG_DNS_NAMESERVERS=dns_server.address, KOOMSG_SMTP_DIRECT_PORT=str(server.port)
        )
        return await transport._send_many(envelope(1, *recipients))

    return deliver


async def test_direct_delivery_to_the_mx(
    deliver_direct: DeliverDirect, smtp_server: ScriptedSMTPServer
) -> None:
    results = await deliver_direct(smtp_server, "ann@example.test")
    assert results["ann@example.test"].status is DeliveryStatus.ACCEPTED
    assert smtp_server.messages[0].rcpt_tos == ("ann@example.test",)
    assert not smtp_server.messages[0].tls


async def test_direct_delivery_follows_mx_preference(
    deliver_direct: DeliverDirect, smtp_server: ScriptedSMTPServer
) -> None:
    results = await deliver_direct(smtp_server, "ann@pref.test")
    assert results["ann@pref.test"].status is DeliveryStatus.ACCEPTED
    assert len(smtp_server.messages) == 1


async def test_direct_delivery_falls_back_to_the_a_record(
    deliver_direct: DeliverDirect, smtp_server: ScriptedSMTPServer
) -> None:
    results = await deliver_direct(smtp_server, "ann@nomx.test")
    assert results["ann@nomx.test"].status is DeliveryStatus.ACCEPTED


async def test_direct_delivery_uses_starttls_when_offered(
    deliver_direct: DeliverDirect, make_smtp_server: MakeServer, smtp_tls: TLSFiles
) -> None:
    server = make_smtp_server(tls=smtp_tls)
    results = await deliver_direct(server, "ann@example.test")
    assert results["ann@example.test"].status is DeliveryStatus.ACCEPTED
    assert server.messages[0].tls


def client_certificate_required(tls: TLSFiles) -> ssl.SSLContext:
    # The client has none: with TLS 1.3 the server hangs up after the client's handshake is done.
    context = tls.server_context()
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def tls_1_1_only(tls: TLSFiles) -> ssl.SSLContext:
    # An old server: the client's handshake itself fails.
    context = tls.server_context()
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


@pytest.mark.parametrize("breaker", [client_certificate_required, tls_1_1_only])
async def test_direct_delivery_continues_in_plain_when_tls_fails(
    deliver_direct: DeliverDirect, make_smtp_server: MakeServer, smtp_tls: TLSFiles, breaker: Any
) -> None:
    server = make_smtp_server(tls=smtp_tls, tls_context=breaker(smtp_tls))
    results = await deliver_direct(server, "ann@example.test")
    assert results["ann@example.test"].status is DeliveryStatus.ACCEPTED, results
    assert not server.messages[0].tls


async def test_direct_delivery_to_several_domains(
    deliver_direct: DeliverDirect, smtp_server: ScriptedSMTPServer
) -> None:
    results = await deliver_direct(
        smtp_server, "x@a.test", "y@b.test", "z@c.test", "w@nowhere.test"
    )
    assert results["x@a.test"].status is DeliveryStatus.ACCEPTED
    assert results["y@b.test"].status is DeliveryStatus.ACCEPTED
    null_mx, nxdomain = results["z@c.test"], results["w@nowhere.test"]
    assert null_mx.status is DeliveryStatus.PERMANENT_FAILURE and "null MX" in null_mx.reply
    assert nxdomain.status is DeliveryStatus.PERMANENT_FAILURE
    assert is_hard_bounce(nxdomain) and is_hard_bounce(null_mx)
    assert sorted(smtp_server.handler.recipients) == ["x@a.test", "y@b.test"]


async def test_no_reachable_mx_is_temporary(
    deliver_direct: DeliverDirect, smtp_server: ScriptedSMTPServer
) -> None:
    results = await deliver_direct(smtp_server, "ann@down.test")
    result = results["ann@down.test"]
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE
    assert "dead.down.test" in result.reply


# -- configuration, registration --------------------------------------------------


def test_relay_url_parsing() -> None:
    relay = Relay.parse("smtp+starttls://us%40er:p%3Ass@mail.example:2587?cafile=/ca.pem")
    assert (relay.host, relay.port, relay.mode) == ("mail.example", 2587, "starttls")
    assert (relay.username, relay.password, relay.cafile, relay.verify) == (
        "us@er",
        "p:ss",
        "/ca.pem",
        True,
    )
    assert Relay.parse("smtps://h?tls_verify=0").port == 465
    assert not Relay.parse("smtps://h?tls_verify=0").verify
    assert Relay.parse("smtp://h").mode == "plain"
    with pytest.raises(ConfigError):
        Relay.parse("smtp+bogus://h")


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    defaults = transport_settings(tmp_path)
    assert defaults.smtp_direct_port == 25
    assert defaults.smtp_max_connections_per_host == 10
    assert defaults.smtp_max_concurrency_per_enterprise == 50
    overridden = transport_settings(
        tmp_path, KOOMSG_SMTP_DIRECT_PORT="2525", KOOMSG_SMTP_TIMEOUT="7"
    )
    assert overridden.smtp_direct_port == 2525 and overridden.smtp_timeout_seconds == 7.0


def test_the_plugin_offers_the_smtp_transport(tmp_path: Path) -> None:
    manager = make_manager(entry_points=False)
    offered: list[Any] = [
        t
        for group in manager.hook.koomsg_transports(settings=transport_settings(tmp_path))
        for t in group
    ]
    assert "smtp" in {t.name for t in offered}


async def test_direct_mx_pointing_at_private_addresses_is_refused_before_connecting(
    make_smtp_transport: MakeTransport,
    dns_server: LocalDnsServer,
    smtp_server: ScriptedSMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns_server.set_zone(ZONE)
    transport = make_smtp_transport(
        KOOMSG_DNS_NAMESERVERS=dns_server.address,
        KOOMSG_SMTP_DIRECT_PORT=str(smtp_server.port),
        KOOMSG_ALLOWED_PRIVATE_NETWORKS="",
    )

    async def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transport connected to a refused address")

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "create_connection", no_connection)
    monkeypatch.setattr(transport._pools, "deliver", no_connection)
    results = await transport._send_many(envelope(1, "ann@ssrf.test"))
    result = results["ann@ssrf.test"]
    assert result.status is DeliveryStatus.PERMANENT_FAILURE
    assert "refused" in result.reply and "169.254.169.254" in result.reply
    assert "10.0.0.1" in result.reply and "127.0.0.1" in result.reply
    assert not is_hard_bounce(result)  # the address is not bad: no suppression
    assert smtp_server.messages == [] and smtp_server.handler.connections == 0
