from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from koomsg.core.templates.content import prepare_body
from koomsg.core.templates.models import BodyType
from koomsg.core.templates.render import compile_template, render_subject
from koomsg.core.templates.text import html_to_text

RICH = prepare_body(
    "<p>Hello {{name}},</p><p>Your code: <b>{{code}}</b><br>Thanks</p>"
    '<p><a href="{{link}}">Open</a> <a href="https://x.com/o?id={{code}}">Order</a></p>',
    BodyType.RICH_TEXT,
).body


def test_rich_text_escapes_values_and_plain_text_does_not() -> None:
    compiled = compile_template(RICH, BodyType.RICH_TEXT)
    parts = compiled.render(
        {"name": '<script>alert("x")</script> & co', "code": "1<2", "link": "https://a"}
    )
    assert parts.html is not None
    # Links hold placeholders, so the filled HTML is sanitised again: quotes in text
    # come back unescaped, which is the same text.
    assert '&lt;script&gt;alert("x")&lt;/script&gt; &amp; co' in parts.html
    assert "<script" not in parts.html
    assert '<script>alert("x")</script> & co' in parts.text

    plain = compile_template("Hi {{name}}!", BodyType.PLAIN_TEXT).render(
        {"name": "<b>Ann</b> & co"}
    )
    assert plain.html is None and plain.text == "Hi <b>Ann</b> & co!"


def test_text_alternative_keeps_paragraphs_and_shows_links() -> None:
    parts = compile_template(RICH, BodyType.RICH_TEXT).render(
        {"name": "Ann", "code": "42", "link": "https://example.com/start"}
    )
    assert parts.text == (
        "Hello Ann,\n\nYour code: 42\nThanks\n\n"
        "Open (https://example.com/start) Order (https://x.com/o?id=42)"
    )


def test_html_to_text_lists_tables_and_skipped_content() -> None:
    text = html_to_text(
        "<style>p{}</style><h1>Title</h1><ul><li>one</li><li>two</li></ul>"
        "<table><tr><td>a</td><td>b</td></tr></table><a href='https://same'>https://same</a>"
    )
    assert text == "Title\n\n- one\n- two\n\na b\n\nhttps://same"
    assert html_to_text(
        "<div><div><p>a<br><br>b</p></div></div><table><tr><td>c</td></tr></table>"
    ) == ("a\n\nb\n\nc")


def test_url_values_cannot_be_script_urls() -> None:
    compiled = compile_template(RICH, BodyType.RICH_TEXT)
    for evil in ("javascript:alert(1)", " java\tscript:alert(1)", "VBScript:x", "data:text/html,x"):
        html = compiled.render({"link": evil}).html
        assert html is not None and 'href="#"' in html
    html = compiled.render({"link": "https://ok.example/?a=1&b=2"}).html
    assert html is not None and 'href="https://ok.example/?a=1&amp;b=2"' in html


def test_missing_values_render_empty_and_none_is_empty() -> None:
    parts = compile_template("a{{x}}b{{y}}c", BodyType.PLAIN_TEXT).render({"y": None})
    assert parts.text == "abc"


def test_unsubscribe_footer_only_when_supported() -> None:
    url = "https://koomsg.example/u/abc?x=1&y=2"
    supported = compile_template(RICH, BodyType.RICH_TEXT, support_unsubscribe=True)
    parts = supported.render({}, unsubscribe_url=url)
    assert (
        parts.html is not None and 'href="https://koomsg.example/u/abc?x=1&amp;y=2"' in parts.html
    )
    assert parts.text.rstrip().endswith(f"Unsubscribe: {url}")
    plain = compile_template("Hi", BodyType.PLAIN_TEXT, support_unsubscribe=True).render(
        {}, unsubscribe_url=url
    )
    assert url in plain.text
    unsupported = compile_template(RICH, BodyType.RICH_TEXT).render({}, unsubscribe_url=url)
    assert (
        url not in unsupported.text and unsupported.html is not None and url not in unsupported.html
    )


def test_subject_rendering_removes_line_breaks_from_values() -> None:
    assert (
        render_subject("Order {{ n }} for {{name}}", {"n": 7, "name": "A\r\nBcc: x@y"})
        == "Order 7 for A Bcc: x@y"
    )


def test_rendering_is_fast_enough_for_delivery() -> None:
    compiled = compile_template(RICH, BodyType.RICH_TEXT, support_unsubscribe=True)
    started = time.perf_counter()
    for index in range(3000):
        compiled.render(
            {"name": f"user{index}", "code": str(index), "link": "https://x"},
            unsubscribe_url="https://u",
        )
    assert time.perf_counter() - started < 1.0  # 3000 messages, far above 1500/s


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["name", "code", "link", "other"]),
        st.one_of(
            st.text(),
            st.builds(lambda a, b: f"{a}<script>{b}", st.text(), st.text()),
            st.builds(lambda a: f'"><ScRiPt src={a}>', st.text(max_size=10)),
        ),
    )
)
def test_rendering_never_raises_nor_lets_a_script_through(values: dict[str, str]) -> None:
    parts = compile_template(RICH, BodyType.RICH_TEXT, support_unsubscribe=True).render(
        values, unsubscribe_url="https://u/x"
    )
    assert parts.html is not None and "<script" not in parts.html.lower()
    assert isinstance(parts.text, str)


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.text(max_size=5), st.one_of(st.text(), st.integers(), st.none(), st.floats())
    )
)
def test_rendering_accepts_any_mapping(values: dict[str, object]) -> None:
    compile_template(RICH, BodyType.RICH_TEXT).render(values)
    compile_template("{{name}} {{code}}", BodyType.PLAIN_TEXT).render(values)
    render_subject("{{name}}", values)


def test_size_is_the_rendered_length_and_the_bound_holds() -> None:
    from koomsg.core.templates.render import compile_template

    values = {"name": "<Ann & Bob>", "link": "https://example.com/?a=1&b=2"}
    in_text = compile_template("<p>Hi {{name}} and {{link}}, {{name}}</p>", "RICH_TEXT")
    rendered = in_text.render(values)
    assert in_text.size(values) == len(rendered.html or "") + len(rendered.text)
    compiled = compile_template('<p>Hi {{name}} <a href="{{link}}">x</a> {{name}}</p>', "RICH_TEXT")
    base, weights = compiled.size_weights()
    bound = base + sum(weights[k] * len(v) for k, v in values.items())
    assert bound >= compiled.size(values)


def test_a_message_that_would_render_huge_is_refused_before_rendering() -> None:
    from koomsg.core.templates.render import compile_template, too_big

    compiled = compile_template("<p>" + "{{p}}" * 10_000 + "</p>", "RICH_TEXT")
    started = time.perf_counter()
    problem = too_big(compiled, "Hello", {"p": "x" * 1024})
    assert problem is not None and "at most 2 MiB" in problem
    assert time.perf_counter() - started < 0.1  # lengths only: nothing rendered
    assert too_big(compiled, "Hello", {"p": "x"}) is None


def test_a_scheme_split_across_a_placeholder_is_caught_after_filling() -> None:
    from koomsg.core.templates.render import compile_template
    from koomsg.core.templates.sanitize import sanitize_html

    body = sanitize_html(
        '<p><a href="{{a}}:alert(1)">x</a><a href="java{{b}}">y</a>'
        '<span style="color: {{c}}">z</span><a href="https://e.example/?u={{a}}">ok</a></p>'
    )
    html = (
        compile_template(body, "RICH_TEXT")
        .render(
            {"a": "javascript", "b": "script:alert(2)", "c": "red; background: url(javascript:x)"}
        )
        .html
    )
    assert html is not None and "javascript:" not in html.replace("?u=javascript", "")
    assert "alert(" not in html and "background" not in html
    assert 'href="https://e.example/?u=javascript"' in html  # a value in a query stays
    # Values in text stay text: no markup can come from a value.
    text_only = compile_template("<p>{{a}}</p>", "RICH_TEXT").render({"a": "<b>x</b>"}).html
    assert text_only == "<p>&lt;b&gt;x&lt;/b&gt;</p>"
