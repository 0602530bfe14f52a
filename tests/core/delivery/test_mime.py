"""MIME skeletons: structure, encodings, line limits and header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from koomsg.core.delivery.mime import (
    Attachment,
    MessageSkeleton,
    check_header_value,
    encode_unstructured,
    rfc_message_id,
)
from koomsg.core.errors import BadInput

CVE_SUBJECT = "=?utf-8?q?Hi=0D=0ABcc:_x?="


def skeleton(**overrides: object) -> MessageSkeleton:
    options: dict[str, object] = {
        "sender_address": "news@shop.example",
        "sender_alias": "Shop",
        "attachments": (),
        "feedback_id": "task1:ent1:koomsg",
    }
    options.update(overrides)
    return MessageSkeleton.build(**options)  # type: ignore[arg-type]


def fill(sk: MessageSkeleton, **overrides: object) -> bytes:
    options: dict[str, object] = {
        "message_id": "msg1",
        "sender_domain": "shop.example",
        "to": "ann@example.org",
        "subject": "Hello Ann",
        "text": "Hello Ann,\nsee you.",
        "html": "<p>Hello <b>Ann</b></p>",
        "unsubscribe_url": None,
    }
    options.update(overrides)
    return sk.fill(**options)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def assert_wire_safe(raw: bytes) -> None:
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_text_and_html_make_multipart_alternative() -> None:
    raw = fill(skeleton(), date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert_wire_safe(raw)
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert (
        message["From"] == '"Shop" <news@shop.example>'
        or message["From"] == "Shop <news@shop.example>"
    )
    assert message["To"] == "<ann@example.org>" or message["To"] == "ann@example.org"
    assert message["Subject"] == "Hello Ann"
    assert message["Message-ID"] == "<msg1@shop.example>"
    assert message["MIME-Version"] == "1.0"
    assert message["Feedback-ID"] == "task1:ent1:koomsg"
    assert message["Date"].datetime == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert "List-Unsubscribe" not in message
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == "Hello Ann,\nsee you."
    assert html.get_content() == "<p>Hello <b>Ann</b></p>"


def test_text_only_is_a_single_part() -> None:
    message = parse(fill(skeleton(sender_alias=None), html=None))
    assert message.get_content_type() == "text/plain"
    assert message["From"].addresses[0].addr_spec == "news@shop.example"
    assert message.get_content().startswith("Hello Ann")


def test_message_id_is_stable_for_a_retried_row() -> None:
    sk = skeleton()
    first, second = parse(fill(sk)), parse(fill(sk))
    assert first["Message-ID"] == second["Message-ID"] == rfc_message_id("msg1", "shop.example")


def test_attachments_make_mixed_around_alternative_and_round_trip() -> None:
    pdf = bytes(range(256)) * 300
    note = "Prix d'été\n".encode()
    sk = skeleton(
        attachments=[
            Attachment("price list.pdf", "application/pdf", pdf),
            Attachment("résumé été.txt", "text/plain", note),
        ]
    )
    raw = fill(sk)
    assert_wire_safe(raw)
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["price list.pdf", "résumé été.txt"]
    assert attachments[0].get_payload(decode=True) == pdf
    assert attachments[1].get_payload(decode=True) == note
    body = message.get_body(("html", "plain"))
    assert body is not None and body.get_content() == "<p>Hello <b>Ann</b></p>"


def test_text_only_with_attachment() -> None:
    sk = skeleton(attachments=[Attachment("a.bin", "application/octet-stream", b"\x00\x01")])
    message = parse(fill(sk, html=None))
    assert [p.get_content_type() for p in message.iter_parts()] == [
        "text/plain",
        "application/octet-stream",
    ]


def test_non_ascii_subject_alias_and_bodies_decode() -> None:
    subject = "Soldes d'été — 春季促销 " * 6
    sk = skeleton(sender_alias='Magasin "Été" 商店')
    raw = fill(
        sk, subject=subject, text="Bonjour 李雷\nça va ?", html="<p>春季促销 " * 500 + "</p>"
    )
    assert_wire_safe(raw)
    assert raw.isascii()
    message = parse(raw)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == 'Magasin "Été" 商店'
    assert message["From"].addresses[0].addr_spec == "news@shop.example"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == "Bonjour 李雷\nça va ?"
    assert html.get_content() == "<p>春季促销 " * 500 + "</p>"


def test_ascii_alias_with_quotes_is_quoted() -> None:
    message = parse(fill(skeleton(sender_alias='Ann "the" Shop')))
    assert message["From"].addresses[0].display_name == 'Ann "the" Shop'


def test_long_lines_stay_under_998_bytes() -> None:
    html = "<p>" + "x" * 100_000 + "</p>"
    subject = "word " * 400 + "y" * 1500
    raw = fill(skeleton(), html=html, text="z" * 100_000, subject=subject.strip())
    assert_wire_safe(raw)
    message = parse(raw)
    body = message.get_body(("html",))
    assert body is not None and body.get_content() == html
    assert message["Subject"] == subject.strip()


def test_long_ascii_subject_folds_at_spaces() -> None:
    subject = " ".join(["lorem"] * 60)
    raw = fill(skeleton(), subject=subject)
    header = raw.split(b"\r\nDate:")[0].split(b"Subject:")[1]
    assert b"=?" not in header and b"\r\n " in header
    assert parse(raw)["Subject"] == subject


def test_unsubscribe_headers() -> None:
    url = "https://koomsg.example/u/" + "T" * 300
    raw = fill(
        skeleton(), unsubscribe_url=url, unsubscribe_mailto="mailto:u@koomsg.example?subject=T"
    )
    assert_wire_safe(raw)
    message = parse(raw)
    assert message["List-Unsubscribe"] == f"<{url}>, <mailto:u@koomsg.example?subject=T>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    only_url = parse(fill(skeleton(), unsubscribe_url=url))
    assert only_url["List-Unsubscribe"] == f"<{url}>"


@pytest.mark.parametrize(
    "value",
    [
        "Hi\r\nBcc: x@evil.example",
        "Hi\nBcc: x",
        "Hi\rBcc: x",
        "nul\x00",
        "tab\tis control",
        "line\u2028separator",
        "next\x85line",
        CVE_SUBJECT,
        "=?utf-8?b?SGkNCkJjYzogeA==?=",
        "price =?iso-8859-1?q?caf=E9?= today",
    ],
)
def test_check_header_value_refuses_injection(value: str) -> None:
    with pytest.raises(BadInput) as caught:
        check_header_value(value, field="subject")
    assert caught.value.field == "subject"


@pytest.mark.parametrize("value", ["Hello", "Été 2025 = 50% off?", "a =? b", "what?= no"])
def test_check_header_value_allows_ordinary_text(value: str) -> None:
    check_header_value(value, field="subject")


def test_cve_subject_is_refused_by_fill() -> None:
    with pytest.raises(BadInput) as caught:
        fill(skeleton(), subject=CVE_SUBJECT)
    assert caught.value.field == "subject"
    with pytest.raises(BadInput):
        fill(skeleton(), subject="Hi\r\nBcc: x@evil.example")
    with pytest.raises(BadInput):
        skeleton(sender_alias="Shop\r\nBcc: x@evil.example")
    with pytest.raises(BadInput):
        skeleton(sender_alias=CVE_SUBJECT)
    with pytest.raises(BadInput):
        fill(skeleton(), to="ann@example.org>\r\nBcc: <x@evil.example")
    with pytest.raises(BadInput):
        skeleton(attachments=[Attachment("a\r\nBcc: x.txt", "text/plain", b"")])


@pytest.mark.parametrize("subject", [CVE_SUBJECT, "Hi\r\nBcc: x@evil.example", "Hi\u2028Bcc: x"])
def test_encoder_never_emits_an_injected_line_even_without_the_check(subject: str) -> None:
    # Splice the header the encoder makes into a real message, as if the check were skipped.
    raw = fill(skeleton(), subject="placeholder")
    line = encode_unstructured("Subject", subject)
    raw = raw.replace(b"Subject: placeholder\r\n", line)
    assert_wire_safe(raw)
    assert not any(row.lower().startswith(b"bcc") for row in raw.split(b"\r\n"))
    message = parse(raw)
    assert "Bcc" not in message
    # Parsing and re-serialising (what the vulnerable email package gets wrong) stays clean too.
    again = message.as_bytes(policy=email.policy.SMTP)
    assert not any(row.lower().startswith(b"bcc") for row in again.split(b"\r\n"))
    assert "Bcc" not in parse(again)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", "bad id"),
        ("sender_domain", "bad domain"),
        ("unsubscribe_url", "https://x.example/u/a b"),
        ("unsubscribe_url", "https://x.example/u/>x"),
        ("to", "ann@exämple.org"),
    ],
)
def test_bad_per_recipient_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(BadInput):
        fill(skeleton(), **{field: value})


def test_body_line_endings_are_normalised() -> None:
    raw = fill(skeleton(), text="a\rb\r\nc\nd  \n.\n", html=None)
    assert_wire_safe(raw)
    assert parse(raw).get_content().replace("\r\n", "\n").rstrip("\n") == "a\nb\nc\nd  \n."
