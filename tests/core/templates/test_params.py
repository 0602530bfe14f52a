from __future__ import annotations

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.templates.params import MAX_PARAMS, normalise, parse_params, validate_subject


def _refused(text: str, field: str = "body") -> str:
    with pytest.raises(BadInput) as caught:
        parse_params(text, field=field)
    assert caught.value.field == field
    return caught.value.message


def test_names_in_order_of_first_use_with_repeats() -> None:
    assert parse_params("Hi {{name}}, {{code}} is for {{name}}; {{name}}") == ["name", "code"]


def test_fifteen_distinct_names_pass_and_sixteen_fail() -> None:
    fifteen = " ".join(f"{{{{p{i}}}}}" for i in range(MAX_PARAMS))
    assert len(parse_params(fifteen + " {{p0}} {{p14}}")) == 15
    message = _refused(fifteen + " {{p15}}")
    assert "15" in message and "16" in message


@pytest.mark.parametrize("name", ["a", "a1", "Name_2", "a_", "ABC"])
def test_valid_names(name: str) -> None:
    assert parse_params(f"x {{{{{name}}}}} y") == [name]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("1a", "digit"),
        ("_a", "underscore"),
        ("123", "only digits"),
        ("a-b", "letters, digits and underscores"),
        ("é", "letters, digits and underscores"),
    ],
)
def test_invalid_names_are_named(name: str, hint: str) -> None:
    message = _refused(f"hello {{{{{name}}}}}")
    assert name in message and hint in message


def test_whitespace_inside_braces_is_accepted_and_normalised() -> None:
    text, names = normalise("Hi {{ name }} and {{\tcode}} and {{name}}")
    assert text == "Hi {{name}} and {{code}} and {{name}}"
    assert names == ["name", "code"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ab\ncd {{name", "line 2, column 4"),
        ("{{}}", "line 1, column 1"),
        ("x {{ }}", "line 1, column 3"),
        ("x {{a b}}", "line 1, column 3"),
        ("x {{a{{b}}}}", "line 1, column 3"),
        ("{{{a}}}", "line 1, column 1"),
    ],
)
def test_malformed_placeholders_name_their_position(text: str, where: str) -> None:
    assert where in _refused(text)


def test_single_braces_are_plain_text() -> None:
    assert parse_params("p { color: red } {a} }} {name}") == []


def test_subject_may_use_the_template_params_only() -> None:
    assert validate_subject("Order {{order}} for {{ name }}", ["name", "order"]) == [
        "order",
        "name",
    ]
    with pytest.raises(BadInput) as caught:
        validate_subject("Hi {{other}}", ["name"])
    assert caught.value.field == "subject" and "other" in caught.value.message
    with pytest.raises(BadInput) as caught:
        validate_subject("Hi {{1x}}", ["name"])
    assert caught.value.field == "subject"


def test_subject_refuses_line_breaks() -> None:
    for subject in ("Hi\r\nBcc: x@example.com", "Hi\nthere"):
        with pytest.raises(BadInput) as caught:
            validate_subject(subject, [])
        assert caught.value.field == "subject"
