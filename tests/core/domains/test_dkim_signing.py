"""Messages signed with a domain's key verify with dkimpy against the published record."""

from __future__ import annotations

import time

import dkim as dkimpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from koomsg.core.domains import dkim
from koomsg.testing.dns import LocalDnsServer, dkim_dnsfunc, zone_line

MESSAGE = (
    b"From: Info Desk <info@example.com>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject:   Your   order\r\n\tships today\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"Message-ID: <msg-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello  Bob,\t \r\n\r\nyour order ships today.  \r\n\r\n\r\n"
)


@pytest.fixture
def key(dns_server: LocalDnsServer) -> bytes:
    pem, public_key = dkim.generate_key()
    # Split into short strings on purpose: receivers join them, and so must we.
    dns_server.set_zone(
        [zone_line("TXT", "km1._domainkey.example.com", dkim.txt_value(public_key), split=100)]
    )
    return pem


def test_signature_verifies_with_dkimpy(dns_server: LocalDnsServer, key: bytes) -> None:
    header = dkim.sign(MESSAGE, domain="example.com", selector="km1", private_key_pem=key)
    assert header.startswith(
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;"
    )
    assert header.endswith(b"\r\n")
    lookup = dkim_dnsfunc(dns_server)
    assert dkimpy.verify(header + MESSAGE, dnsfunc=lookup)
    # Relaxed canonicalisation survives whitespace changes in transit, not content changes.
    rewrapped = MESSAGE.replace(b"Subject:   Your   order", b"Subject: Your order")
    assert dkimpy.verify(header + rewrapped, dnsfunc=lookup)
    assert not dkimpy.verify(header + MESSAGE.replace(b"today.", b"tomorrow."), dnsfunc=lookup)
    assert not dkimpy.verify(header + MESSAGE.replace(b"bob@", b"eve@"), dnsfunc=lookup)


def test_lf_only_messages_and_empty_bodies_verify(dns_server: LocalDnsServer, key: bytes) -> None:
    lookup = dkim_dnsfunc(dns_server)
    for message in (MESSAGE.replace(b"\r\n", b"\n"), MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"):
        header = dkim.sign(message, domain="example.com", selector="km1", private_key_pem=key)
        assert dkimpy.verify(header + message, dnsfunc=lookup)


def test_only_present_headers_are_listed_and_from_is_required(key: bytes) -> None:
    header = dkim.sign(MESSAGE, domain="example.com", selector="km1", private_key_pem=key)
    assert b"h=from:to:subject:date:message-id:mime-version:content-type;" in header
    with pytest.raises(ValueError, match="From"):
        dkim.sign(
            MESSAGE,
            domain="example.com",
            selector="km1",
            private_key_pem=key,
            include_headers=["to"],
        )


def test_signing_is_fast(key: bytes) -> None:
    dkim.sign(MESSAGE, domain="example.com", selector="km1", private_key_pem=key)
    started, count = time.perf_counter(), 200
    for _ in range(count):
        dkim.sign(MESSAGE, domain="example.com", selector="km1", private_key_pem=key)
    rate = count / (time.perf_counter() - started)
    # About 3000/s on one core here; dkimpy alone manages about 150/s. Loose, for slow CI.
    assert rate > 500, rate


_TEXT = st.text(alphabet=" \t!#$%&'()*+,-./0123456789:;<=>?@ABCXYZabcxyz[]^_`{|}~=", max_size=40)


@given(
    fields=st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
            st.lists(_TEXT, min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=8,
    ),
    body=st.lists(_TEXT, max_size=5),
)
def test_the_fast_parser_and_canonicaliser_agree_with_dkimpy(
    fields: list[tuple[str, list[str]]], body: list[str]
) -> None:
    from dkim import rfc822_parse
    from dkim.canonicalization import Relaxed

    from koomsg.core.domains.dkim import _split, _split_crlf, relaxed_headers

    # Continuation lines start with white space, as folded header fields do.
    lines = [
        f"{name}:{parts[0]}" + "".join(f"\r\n {p}" for p in parts[1:]) for name, parts in fields
    ]
    message = ("\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(body)).encode()
    fast = _split(message)
    assert _split_crlf(message) is not None
    slow_headers, _ = rfc822_parse(message.split(b"\r\n\r\n", 1)[0] + b"\r\n")
    assert fast[0] == slow_headers
    assert relaxed_headers(fast[0]) == [
        tuple(h) for h in Relaxed.canonicalize_headers(slow_headers)
    ]
