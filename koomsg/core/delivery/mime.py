"""Fast MIME assembly: one skeleton per task, filled per recipient by joining bytes.

Building and serialising an ``email.message.EmailMessage`` costs about a
millisecond, which alone would cap a worker below the 1500 messages/s the
delivery pipeline needs. So the parts that are the same for every recipient
of a task (the sender, boundaries, attachments already base64-encoded, the
``Feedback-ID``) are encoded once into a :class:`MessageSkeleton`, and
:meth:`MessageSkeleton.fill` only encodes what differs per recipient and joins
bytes. The ``email`` package is used for encoding helpers and, once per task,
for attachment part headers — never to serialise user text into headers.

Usage::

    skeleton = MessageSkeleton.build(
        sender_address="news@shop.example",
        sender_alias="Shop",
        attachments=[Attachment("price list.pdf", "application/pdf", data)],
        feedback_id=f"{task_id}:{enterprise_id}:koomsg",
    )
    raw = skeleton.fill(
        message_id=row.id, sender_domain="shop.example", to="ann@example.org",
        subject="Hello Ann", text="…", html="<p>…</p>",
        unsubscribe_url="https://koomsg.example/u/TOKEN",
        unsubscribe_mailto="mailto:unsubscribe@koomsg.example?subject=TOKEN",
    )

``fill`` returns the whole message with CRLF line endings and no line over
998 bytes, ready for DKIM signing and SMTP. Its ``Message-ID`` is
``<{message_id}@{sender_domain}>``, so a retried row carries the same one
(:func:`rfc_message_id`).

Every user-supplied value that ends up in a header goes through
:func:`check_header_value`, which refuses control characters (CR and LF above
all) and anything that looks like an RFC 2047 encoded word: Python 3.11.7's
``email`` package lets an encoded word smuggle CR/LF into a header when a
message is parsed and re-serialised (CVE-2024-6923). The encoders below also
replace control characters and encode ``=?`` themselves, so a value that
skipped the check still cannot start a header line of its own.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import MIMEPart
from email.utils import format_datetime
from functools import lru_cache

from koomsg.core.errors import BadInput

CRLF = b"\r\n"
MAX_LINE = 998
# RFC 5322 recommends 78; encoded words may use 75 of them.
SOFT_LINE = 78
# 45 bytes of UTF-8 become 60 base64 characters: "=?utf-8?b?" + 60 + "?=" is 72 <= 75.
_WORD_BYTES = 45

# C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators that
# str.splitlines() (used inside the email package) treats as line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)
_ID_LEFT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_ASCII_ADDRESS = re.compile(r"[^\s<>(),;:\"\[\]\\@]+@[A-Za-z0-9.\[\]:-]+")
_URL = re.compile(r"[\x21-\x7e]{1,900}")


def check_header_value(value: str, *, field: str) -> None:
    """Refuse user text that could forge a header line once serialised or re-parsed.

    Refused: any control character (CR, LF, NUL, tab, DEL, C1, U+2028/2029)
    and any ``=?`` … ``?=`` sequence, whether or not it decodes to CR/LF,
    because some parsers turn encoded words back into raw text.

    :raises BadInput: naming ``field``.
    """
    if _CONTROL.search(value):
        raise BadInput(field, "must not contain line breaks or control characters")
    if "=?" in value and _ENCODED_WORD.search(value):
        raise BadInput(field, "must not contain RFC 2047 encoded words (=?…?=)")


def rfc_message_id(message_id: str, sender_domain: str) -> str:
    """The ``Message-ID`` of a koomsg message: stable across retries of the same row."""
    if not _ID_LEFT.fullmatch(message_id):
        raise BadInput("messageId", "is not usable in a Message-ID header")
    if not _DOMAIN.fullmatch(sender_domain):
        raise BadInput("senderDomain", "is not a valid domain name")
    return f"<{message_id}@{sender_domain}>"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def _sanitise(value: str) -> str:
    # Defence in depth behind check_header_value: never emit a raw control char.
    return _CONTROL.sub(" ", value) if _CONTROL.search(value) else value


def _encoded_words(text: str) -> list[bytes]:
    """RFC 2047 base64 words, each <= 75 characters, never splitting a character."""
    words: list[bytes] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES and chunk:
            words.append(_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk or not words:
        words.append(_word("".join(chunk)))
    return words


def _word(text: str) -> bytes:
    return b"=?utf-8?b?" + base64.b64encode(text.encode("utf-8")) + b"?="


def _fold_plain(name: str, value: str) -> bytes | None:
    """Fold printable ASCII at spaces; None when some line would still exceed 998."""
    if len(name) + 2 + len(value) <= SOFT_LINE:
        return f"{name}: {value}".encode("ascii") + CRLF
    lines: list[str] = []
    start = current = f"{name}:"
    for word in value.split(" "):
        if word and current != start and len(current) + 1 + len(word) > SOFT_LINE:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return "\r\n".join(lines).encode("ascii") + CRLF


@lru_cache(maxsize=512)
def encode_unstructured(name: str, value: str) -> bytes:
    """A whole unstructured header line (``Subject``): plain when it can be, RFC 2047 when not.

    Control characters are replaced by spaces and ``=?`` forces encoding, so
    even a value that skipped :func:`check_header_value` cannot inject a line.
    """
    value = _sanitise(value)
    if value.isascii() and "=?" not in value and value.isprintable():
        folded = _fold_plain(name, value)
        if folded is not None:
            return folded
    return f"{name}: ".encode("ascii") + b"\r\n ".join(_encoded_words(value)) + CRLF


def _from_header(address: str, alias: str | None) -> bytes:
    if not alias:
        return f"From: <{address}>".encode("ascii") + CRLF
    alias = _sanitise(alias)
    if alias.isascii() and alias.isprintable() and "=?" not in alias:
        quoted = alias.replace("\\", "\\\\").replace('"', '\\"')
        line = f'From: "{quoted}" <{address}>'
        if len(line) <= MAX_LINE:
            return line.encode("ascii") + CRLF
    words = _encoded_words(alias)
    return b"From: " + b"\r\n ".join(words) + f"\r\n <{address}>".encode("ascii") + CRLF


def _check_address(value: str, field: str) -> None:
    check_header_value(value, field=field)
    if not value.isascii() or len(value) > 254 or not _ASCII_ADDRESS.fullmatch(value):
        raise BadInput(field, "is not a plain ASCII email address")


def _encode_body(text: str) -> tuple[bytes, bytes]:
    """(transfer encoding, encoded bytes without a final line break), CRLF, lines <= 76."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = text.encode("utf-8", "replace")
    # Mostly non-ASCII text (CJK) is a third smaller in base64 than in quoted-printable.
    if len(raw) - len(text) > len(text) // 4:
        encoded = base64.encodebytes(raw).replace(b"\n", CRLF)
        return b"base64", encoded.rstrip(CRLF)
    # With LF-only input b2a_qp writes LF soft breaks too; CRLF comes after.
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    return b"quoted-printable", encoded.replace(b"\n", CRLF).rstrip(CRLF)


def _text_part(subtype: bytes, text: str) -> list[bytes]:
    cte, body = _encode_body(text)
    return [
        b"Content-Type: text/" + subtype + b"; charset=utf-8\r\nContent-Transfer-Encoding: ",
        cte,
        b"\r\n\r\n",
        body,
    ]


_date_cache: tuple[int, bytes] = (0, b"")


def _date_header(date: datetime | None) -> bytes:
    global _date_cache
    if date is not None:
        return b"Date: " + format_datetime(date).encode("ascii") + CRLF
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        stamp = format_datetime(datetime.fromtimestamp(now, UTC))
        cached = (now, b"Date: " + stamp.encode("ascii") + CRLF)
        _date_cache = cached
    return cached[1]


def _attachment_part(attachment: Attachment) -> bytes:
    check_header_value(attachment.filename, field="attachments.filename")
    maintype, _, subtype = attachment.content_type.partition("/")
    if not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
        raise BadInput("attachments.contentType", "expected type/subtype")
    if maintype.lower() == "multipart":
        raise BadInput("attachments.contentType", "multipart attachments are not supported")
    part = MIMEPart(policy=policy.SMTP)
    # Bytes content is always base64 here, so the "=_" boundaries below never occur in it.
    part.set_content(
        attachment.data, maintype, subtype, disposition="attachment", filename=attachment.filename
    )
    return part.as_bytes(policy=policy.SMTP).rstrip(CRLF)


def _boundary(kind: str) -> bytes:
    # "=_" cannot appear in quoted-printable or base64 output, so no body can contain it.
    return f"=_koomsg_{kind}_{secrets.token_hex(12)}".encode("ascii")


class MessageSkeleton:
    """The per-task constant part of a message; :meth:`fill` makes one recipient's bytes.

    Safe to share between asyncio tasks and threads: it holds only immutable bytes.
    """

    def __init__(
        self, *, from_line: bytes, static_headers: bytes, attachments: tuple[bytes, ...]
    ) -> None:
        self._from = from_line
        self._static = static_headers
        self._attachments = attachments
        self._mixed = _boundary("m")
        self._alt = _boundary("a")

    @classmethod
    def build(
        cls,
        *,
        sender_address: str,
        sender_alias: str | None,
        attachments: Sequence[Attachment] = (),
        feedback_id: str,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> MessageSkeleton:
        """Encode once what every recipient of a task shares.

        :param feedback_id: e.g. ``f"{task_id}:{enterprise_id}:koomsg"`` (ASCII).
        :param extra_headers: further constant headers as (name, ASCII value).
        :raises BadInput: for a value that must not go into a header.
        """
        _check_address(sender_address, "senderAddress")
        if sender_alias:
            check_header_value(sender_alias, field="senderAlias")
        static = [b"MIME-Version: 1.0\r\n"]
        for name, value in (("Feedback-ID", feedback_id), *extra_headers):
            check_header_value(value, field=name)
            if not _TOKEN.fullmatch(name) or not value.isascii() or len(value) > 900:
                raise BadInput(name, "must be a short ASCII header")
            static.append(f"{name}: {value}".encode("ascii") + CRLF)
        return cls(
            from_line=_from_header(sender_address, sender_alias),
            static_headers=b"".join(static),
            attachments=tuple(_attachment_part(a) for a in attachments),
        )

    def fill(
        self,
        *,
        message_id: str,
        sender_domain: str,
        to: str,
        subject: str,
        text: str,
        html: str | None,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
        date: datetime | None = None,
    ) -> bytes:
        """One recipient's message as CRLF bytes.

        :param message_id: the koomsg message id (the ``Message-ID`` left part).
        :param sender_domain: the ``Message-ID`` right part.
        :param unsubscribe_url: adds ``List-Unsubscribe`` (with ``unsubscribe_mailto``
            when given) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
        :param date: defaults to now.
        :raises BadInput: for a value that must not go into a header.
        """
        _check_address(to, "to")
        check_header_value(subject, field="subject")
        out = [
            self._from,
            b"To: <" + to.encode("ascii") + b">\r\n",
            encode_unstructured("Subject", subject),
            _date_header(date),
            b"Message-ID: " + rfc_message_id(message_id, sender_domain).encode("ascii") + CRLF,
            self._static,
        ]
        if unsubscribe_url:
            out.append(_unsubscribe_headers(unsubscribe_url, unsubscribe_mailto))
        self._body(out, text, html)
        return b"".join(out)

    def _body(self, out: list[bytes], text: str, html: str | None) -> None:
        if not self._attachments:
            if html is None:
                out.extend(_text_part(b"plain", text))
                out.append(CRLF)
            else:
                self._alternative(out, text, html)
            return
        mixed = self._mixed
        out += [b'Content-Type: multipart/mixed; boundary="', mixed, b'"\r\n\r\n--', mixed, CRLF]
        if html is None:
            out.extend(_text_part(b"plain", text))
        else:
            self._alternative(out, text, html)
        for part in self._attachments:
            out += [b"\r\n--", mixed, CRLF, part]
        out += [b"\r\n--", mixed, b"--\r\n"]

    def _alternative(self, out: list[bytes], text: str, html: str) -> None:
        alt = self._alt
        out += [b'Content-Type: multipart/alternative; boundary="', alt, b'"\r\n\r\n--', alt, CRLF]
        out.extend(_text_part(b"plain", text))
        out += [b"\r\n--", alt, CRLF]
        out.extend(_text_part(b"html", html))
        out += [b"\r\n--", alt, b"--\r\n"]


def _unsubscribe_headers(url: str, mailto: str | None) -> bytes:
    targets = [url] if not mailto else [url, mailto]
    for target in targets:
        if not _URL.fullmatch(target) or "<" in target or ">" in target or "," in target:
            raise BadInput("unsubscribeUrl", "must be a short ASCII URL without spaces")
    # One target per line keeps long token URLs under the line limit.
    value = ",\r\n ".join(f"<{target}>" for target in targets)
    return (
        f"List-Unsubscribe: {value}\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    ).encode("ascii")
