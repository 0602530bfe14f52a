"""Turning what a client sent into a body that can be saved: validated, sanitised, parsed."""

from __future__ import annotations

from dataclasses import dataclass

from koomsg.core.errors import BadInput
from koomsg.core.templates.models import BodyType
from koomsg.core.templates.params import normalise
from koomsg.core.templates.sanitize import (
    MAX_BODY_BYTES,
    check_limits,
    decode_html_file,
    sanitize_html,
)

MAX_NAME = 128


@dataclass(frozen=True)
class HtmlFile:
    """An uploaded body: its file name and at most ``MAX_BODY_BYTES + 1`` of its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Content:
    body_type: BodyType
    body: str
    params: list[str]


def clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise BadInput("name", f"a template title has 1 to {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadInput("name", "a template title cannot contain control characters")
    return name


def _from_file(html_file: HtmlFile, body_type: BodyType) -> str:
    if body_type is not BodyType.RICH_TEXT:
        raise BadInput("htmlFile", "an HTML file can only be the body of a RICH_TEXT template")
    if not html_file.filename.lower().endswith((".html", ".htm")):
        raise BadInput("htmlFile", "upload an .html file")
    return decode_html_file(html_file.data)


def prepare_body(
    body: str | None, body_type: BodyType, html_file: HtmlFile | None = None
) -> Content:
    """The body to save; the uploaded file, when given, replaces ``body``."""
    field = "htmlFile" if html_file is not None else "body"
    text = _from_file(html_file, body_type) if html_file is not None else body
    if text is None or not text.strip():
        raise BadInput(field, "the email body is required (or upload an HTML file)")
    if body_type is BodyType.PLAIN_TEXT:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise BadInput(field, f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
        text, params = normalise(text, field=field)
        return Content(body_type, text, params)
    check_limits(text, field=field)
    # Placeholders are checked on what the client wrote, so positions match its text...
    text, _ = normalise(text, field=field)
    cleaned = sanitize_html(text, field=field)
    if not cleaned.strip():
        raise BadInput(field, "nothing is left of the body once unsafe content is removed")
    # ...and again on the sanitised body, which decodes entities such as &#123;.
    cleaned, params = normalise(cleaned, field=field)
    return Content(body_type, cleaned, params)
