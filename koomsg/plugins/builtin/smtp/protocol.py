"""One SMTP transaction on an open connection, and what the server's replies mean.

Outcomes per recipient: 2xx is ACCEPTED, 5xx PERMANENT_FAILURE with the
server's reply, 4xx, timeouts and dropped connections TEMPORARY_FAILURE. A
421 closes that connection.

When the server advertises PIPELINING (RFC 2920), MAIL FROM, every RCPT TO
and DATA go out in one write and their replies are read back in order, then
the message; otherwise, and until EHLO was said on the connection (by its
first message, or while connecting for STARTTLS or AUTH), each command waits
for its reply.
"""

from __future__ import annotations

import asyncio
import re
from typing import cast

import aiosmtplib
import aiosmtplib.protocol
from aiosmtplib.email import quote_address

from koomsg.core.clock import utcnow
from koomsg.plugins.types import DeliveryResult, DeliveryStatus, Envelope


def from_reply(code: int, message: str) -> DeliveryResult:
    reply = f"{code} {' '.join(message.split())}".strip()
    if 200 <= code < 300:
        return DeliveryResult(DeliveryStatus.ACCEPTED, reply, code, utcnow())
    if 500 <= code < 600:
        return DeliveryResult.permanent(reply, code)
    return DeliveryResult.temporary(reply, code)


def from_error(error: BaseException) -> DeliveryResult:
    if isinstance(error, aiosmtplib.SMTPResponseException) and error.code >= 400:
        return from_reply(error.code, error.message)
    if isinstance(error, TimeoutError):
        return DeliveryResult.temporary(f"timed out: {error}")
    return DeliveryResult.temporary(f"{type(error).__name__}: {error}")


class Stale(Exception):
    """A pooled connection turned out to be closed before the transaction began."""


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


class PipelineReader(asyncio.Protocol):
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


async def transaction(
    smtp: aiosmtplib.SMTP, recipients: list[str], envelope: Envelope
) -> dict[str, DeliveryResult]:
    """MAIL, RCPT per recipient and DATA: a result per recipient; refusals are reset (RSET).

    Raises :class:`Stale` if the connection was closed before MAIL, aiosmtplib's errors later.
    """
    # Extensions are known once EHLO was said on this connection.
    if smtp.is_connected and smtp.supports_extension("pipelining"):
        pipelined = await _pipelined(smtp, recipients, envelope)
        if pipelined is not None:
            outcome, refused = pipelined
            if refused:
                await _reset(smtp)
            return outcome
    try:
        await smtp.mail(envelope.mail_from)
    except aiosmtplib.SMTPServerDisconnected as exc:
        raise Stale() from exc
    except aiosmtplib.SMTPSenderRefused as exc:
        await _reset(smtp)
        return dict.fromkeys(recipients, from_reply(exc.code, exc.message))
    results: dict[str, DeliveryResult] = {}
    accepted = []
    for recipient in recipients:
        try:
            await smtp.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as exc:
            results[recipient] = from_reply(exc.code, exc.message)
            if exc.code == 421:
                raise
        else:
            accepted.append(recipient)
    if not accepted:
        await _reset(smtp)
        return results
    try:
        response = await smtp.data(envelope.data)
    except aiosmtplib.SMTPDataError as exc:
        await _reset(smtp)
        results.update(dict.fromkeys(accepted, from_reply(exc.code, exc.message)))
        return results
    results.update(dict.fromkeys(accepted, from_reply(response.code, response.message)))
    return results


async def _pipelined(
    smtp: aiosmtplib.SMTP, recipients: list[str], envelope: Envelope
) -> tuple[dict[str, DeliveryResult], bool] | None:
    """The transaction of :func:`transaction` with MAIL, RCPT and DATA written at once.

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
    reader = PipelineReader(protocol)
    transport.set_protocol(reader)
    try:
        return await _pipeline(
            smtp, cast(asyncio.WriteTransport, transport), reader, batch, recipients, envelope
        )
    finally:
        if transport.get_protocol() is reader:
            transport.set_protocol(protocol)


async def _pipeline(
    smtp: aiosmtplib.SMTP,
    transport: asyncio.WriteTransport,
    reader: PipelineReader,
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
        raise Stale() from exc
    results: dict[str, DeliveryResult] = {}
    accepted = []
    if mail.code != 250:
        results = dict.fromkeys(recipients, from_reply(mail.code, mail.message))
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
        results[recipient] = from_reply(response.code, response.message)
        if response.code == 421:
            raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
    data = await reply()
    if data.code != 354:
        results.update(dict.fromkeys(accepted, from_reply(data.code, data.message)))
        return results, True
    if not accepted:
        # RFC 2920: a server accepting DATA without recipients gets an empty message.
        transport.write(b".\r\n")
        await reply()
        return results, True
    transport.write(_data_payload(envelope.data))
    done = await reply()
    results.update(dict.fromkeys(accepted, from_reply(done.code, done.message)))
    return results, done.code != 250


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    # Only after a refused transaction: a completed DATA leaves the session clean.
    if not smtp.is_connected:
        return
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
