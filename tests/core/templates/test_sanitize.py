from __future__ import annotations

import time

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.templates.content import HtmlFile, prepare_body
from koomsg.core.templates.models import BodyType
from koomsg.core.templates.sanitize import (
    MAX_BODY_BYTES,
    check_limits,
    decode_html_file,
    sanitize_html,
)


def test_scripts_and_event_handlers_are_removed() -> None:
    cleaned = sanitize_html(
        '<p onclick="steal()">Hi</p><script>alert(1)</script><img src="a.png" onerror="x()">'
    )
    assert "script" not in cleaned and "alert" not in cleaned
    assert "onclick" not in cleaned and "onerror" not in cleaned
    assert "<p>Hi</p>" in cleaned and '<img src="a.png">' in cleaned


def test_javascript_links_lose_their_href() -> None:
    cleaned = sanitize_html('<a href="javascript:alert(1)">a</a><a href=" JaVaScRiPt:x">b</a>')
    assert "javascript" not in cleaned.lower()


def test_email_layout_is_kept() -> None:
    source = (
        '<table width="600" cellpadding="0" cellspacing="0" bgcolor="#fff" style="width: 600px">'
        '<tr><td align="center" style="color: #333; padding: 8px">'
        '<a href="https://example.com/x" target="_blank">link</a>'
        '<img src="https://example.com/logo.png" alt="Logo" width="120"></td></tr></table>'
    )
    cleaned = sanitize_html(source)
    for kept in (
        'width="600"',
        'cellpadding="0"',
        'style="width: 600px"',
        'style="color: #333; padding: 8px"',
        'href="https://example.com/x"',
        'alt="Logo"',
        'bgcolor="#fff"',
        'align="center"',
    ):
        assert kept in cleaned, kept


def test_style_declarations_reaching_script_are_dropped() -> None:
    cleaned = sanitize_html(
        '<p style="color: red; width: expression(alert(1)); background: url(javascript:x)">t</p>'
    )
    assert 'style="color: red"' in cleaned


def test_placeholders_survive_sanitising_in_text_and_urls() -> None:
    content = prepare_body(
        '<p>Hi {{ name }}</p><a href="{{link}}">go</a><a href="https://x.com/?u={{ id }}">x</a>'
        '<img src="https://cdn/{{img}}.png">',
        BodyType.RICH_TEXT,
    )
    assert content.params == ["name", "link", "id", "img"]
    assert 'href="{{link}}"' in content.body and "u={{id}}" in content.body


def test_size_and_depth_are_refused_before_sanitising() -> None:
    started = time.perf_counter()
    with pytest.raises(BadInput, match="200 levels"):
        prepare_body("<div>" * 100_000 + "x", BodyType.RICH_TEXT)
    assert time.perf_counter() - started < 1
    check_limits("<div>" * 200 + "x" + "</div>" * 200)
    # Paragraphs and cells close themselves: they never nest however many there are.
    check_limits("<p>x" * 1000)
    with pytest.raises(BadInput) as caught:
        prepare_body("a" * (MAX_BODY_BYTES + 1), BodyType.RICH_TEXT)
    assert caught.value.field == "body"


def test_a_body_that_is_only_unsafe_content_is_refused() -> None:
    with pytest.raises(BadInput) as caught:
        prepare_body("<script>alert(1)</script>", BodyType.RICH_TEXT)
    assert caught.value.field == "body"


def test_plain_text_is_stored_verbatim() -> None:
    content = prepare_body("<b>not html</b> {{ a }}\n\nbye", BodyType.PLAIN_TEXT)
    assert content.body == "<b>not html</b> {{a}}\n\nbye"


def test_html_file_charsets() -> None:
    utf8 = "<p>Grüße {{name}}</p>".encode()
    assert decode_html_file(utf8) == "<p>Grüße {{name}}</p>"
    latin = '<html><head><meta charset="iso-8859-1"></head><body><p>Grüße</p></body></html>'.encode(
        "latin-1"
    )
    assert "Grüße" in decode_html_file(latin)
    declared = (
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252"><p>€</p>'
    ).encode("cp1252")
    assert "€" in decode_html_file(declared)
    with pytest.raises(BadInput, match="declares no charset") as caught:
        decode_html_file("<p>Grüße</p>".encode("latin-1"))
    assert caught.value.field == "htmlFile"
    with pytest.raises(BadInput, match="unknown charset"):
        decode_html_file(b'<meta charset="klingon"><p>x</p>')


def test_html_file_replaces_body_and_is_rich_text_only() -> None:
    upload = HtmlFile("t.html", b"<p>From file {{x}}</p>")
    content = prepare_body("ignored", BodyType.RICH_TEXT, upload)
    assert content.body == "<p>From file {{x}}</p>" and content.params == ["x"]
    with pytest.raises(BadInput) as caught:
        prepare_body(None, BodyType.PLAIN_TEXT, upload)
    assert caught.value.field == "htmlFile"
    with pytest.raises(BadInput) as caught:
        prepare_body(None, BodyType.RICH_TEXT, HtmlFile("t.txt", b"<p>x</p>"))
    assert caught.value.field == "htmlFile"
    with pytest.raises(BadInput) as caught:
        prepare_body(None, BodyType.RICH_TEXT, HtmlFile("big.html", b"a" * (MAX_BODY_BYTES + 1)))
    assert caught.value.field == "htmlFile"


def test_full_html_documents_keep_their_body() -> None:
    document = (
        "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style></head>"
        '<body><table width="600"><tr><td>Hello {{name}}</td></tr></table></body></html>'
    )
    content = prepare_body(document, BodyType.RICH_TEXT)
    assert "<title>" not in content.body and "color:red" not in content.body
    assert 'width="600"' in content.body and content.params == ["name"]
