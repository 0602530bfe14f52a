"""The one renderer, used by preview and by delivery.

A template is compiled once into literal and parameter segments (the HTML
and its text alternative each), then filled per recipient: delivery renders
thousands of messages a second, so filling is a join, with no parsing.
Nothing is ever evaluated: a value is text, HTML-escaped in a rich body and
copied verbatim into plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from koomsg.core.templates.models import BodyType
from koomsg.core.templates.sanitize import sanitize_html
from koomsg.core.templates.text import html_to_text

# Lenient on purpose: stored bodies were validated by ``params.scan``; here a
# malformed brace pair is simply literal text, so rendering never raises.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}")
# The sanitiser writes every attribute double-quoted, so this finds a value's start.
_URL_ATTRIBUTE_START = re.compile(r"""\b(?:href|src|background)\s*=\s*"\s*\Z""", re.IGNORECASE)
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SAFE_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")

TEXT, HTML, URL = 0, 1, 2
# The largest message (subject, HTML and text together, before attachments) koomsg
# renders, in characters: checked from lengths before anything is rendered.
MAX_RENDERED_CHARS = 2 * 1024 * 1024
# html.escape turns one character into at most six ("&quot;").
_ESCAPE_GROWTH = 6


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _safe_url(value: str) -> str:
    # Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
    squeezed = re.sub(r"[\x00-\x20]", "", value)
    scheme = _URL_SCHEME.match(squeezed)
    if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES:
        return "#"
    return html.escape(value, quote=True)


_FILL = {
    TEXT: _as_text,
    HTML: lambda value: html.escape(_as_text(value), quote=True),
    URL: lambda value: _safe_url(_as_text(value)),
}


@dataclass(frozen=True)
class Segments:
    """Literals interleaved with (name, kind) slots: ``literals`` has one more item.

    ``in_tags``: some slot sits inside a tag (an attribute value), where an escaped
    value can still change meaning (``href="{{a}}:alert(1)"``, ``style="{{c}}"``);
    such HTML is sanitised again once filled.
    """

    literals: tuple[str, ...]
    slots: tuple[tuple[str, int], ...]
    in_tags: bool = False

    def size(self, values: Mapping[str, Any]) -> int:
        """``len(self.fill(values))`` without building the string (values filled once each)."""
        filled: dict[tuple[str, int], int] = {}
        total = sum(map(len, self.literals))
        for slot in self.slots:
            length = filled.get(slot)
            if length is None:
                name, kind = slot
                length = filled[slot] = len(_FILL[kind](values.get(name)))
            total += length
        return total

    def fill(self, values: Mapping[str, Any]) -> str:
        literals = self.literals
        out = [literals[0]]
        for index, (name, kind) in enumerate(self.slots):
            out.append(_FILL[kind](values.get(name)))
            out.append(literals[index + 1])
        return "".join(out)


def split(text: str, *, markup: bool) -> Segments:
    literals: list[str] = []
    slots: list[tuple[str, int]] = []
    last = 0
    in_tags = False
    for match in _PLACEHOLDER.finditer(text):
        literal = text[last : match.start()]
        literals.append(literal)
        kind = TEXT
        if markup:
            kind = URL if _URL_ATTRIBUTE_START.search(literal[-200:]) else HTML
            # Inside a tag when the last "<" before the slot comes after the last ">".
            in_tags = in_tags or text.rfind("<", 0, match.start()) > text.rfind(
                ">", 0, match.start()
            )
        slots.append((match.group(1), kind))
        last = match.end()
    literals.append(text[last:])
    return Segments(tuple(literals), tuple(slots), in_tags)


@dataclass(frozen=True)
class RenderedParts:
    html: str | None
    text: str


UNSUBSCRIBE_HTML = (
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
    '<tr><td align="center" style="padding: 16px; font-family: Arial, sans-serif; '
    "font-size: 12px; color: #888888;\">Don't want these emails? "
    '<a href="{url}" style="color: #888888; text-decoration: underline;">Unsubscribe</a>'
    "</td></tr></table>"
)
UNSUBSCRIBE_TEXT = "\n\n--\nDon't want these emails? Unsubscribe: {url}\n"


@dataclass(frozen=True)
class Compiled:
    body_type: BodyType
    html: Segments | None
    text: Segments
    support_unsubscribe: bool = False

    def size(self, values: Mapping[str, Any]) -> int:
        """Characters the body (HTML and text) would have with ``values``."""
        html_size = self.html.size(values) if self.html is not None else 0
        return html_size + self.text.size(values)

    def size_weights(self) -> tuple[int, dict[str, int]]:
        """``(literal characters, {param: weight})``: ``size`` is at most the literal
        characters plus each value's length times its weight (how often it appears,
        six times over where it is HTML-escaped). Row checks use it: one multiply per
        param instead of one per placeholder."""
        base = 0
        weights: dict[str, int] = {}
        for segments in (self.html, self.text):
            if segments is None:
                continue
            base += sum(map(len, segments.literals))
            for name, kind in segments.slots:
                weights[name] = weights.get(name, 0) + (1 if kind == TEXT else _ESCAPE_GROWTH)
        return base, weights

    def render(
        self, values: Mapping[str, Any], *, unsubscribe_url: str | None = None
    ) -> RenderedParts:
        """Fill in ``values`` (missing ones are empty); add the unsubscribe footer if supported."""
        body_html = None
        if self.html is not None:
            body_html = self.html.fill(values)
            if self.html.in_tags:
                # The same rules as the stored body, on the filled one: a scheme split
                # across a placeholder, or CSS a value completes, is caught as a whole.
                body_html = sanitize_html(body_html)
        text = self.text.fill(values)
        if self.support_unsubscribe and unsubscribe_url:
            if body_html is not None:
                body_html += UNSUBSCRIBE_HTML.format(url=html.escape(unsubscribe_url, quote=True))
            text = text.rstrip("\n") + UNSUBSCRIBE_TEXT.format(url=unsubscribe_url)
        return RenderedParts(body_html, text)


def compile_template(
    body: str, body_type: BodyType | str, *, support_unsubscribe: bool = False
) -> Compiled:
    """Compile a saved (sanitised) body once; ``render`` it per recipient."""
    kind = BodyType(body_type)
    if kind is BodyType.RICH_TEXT:
        return Compiled(
            kind,
            split(body, markup=True),
            split(html_to_text(body), markup=False),
            support_unsubscribe,
        )
    return Compiled(kind, None, split(body, markup=False), support_unsubscribe)


@lru_cache(maxsize=1024)
def compile_subject(subject: str) -> Segments:
    return split(subject, markup=False)


def render_subject(subject: str, values: Mapping[str, Any]) -> str:
    """The subject, filled; control characters in values become spaces (it is a header)."""
    segments = compile_subject(subject)
    safe = {name: _HEADER_UNSAFE.sub(" ", _as_text(values.get(name))) for name, _ in segments.slots}
    return segments.fill(safe)


def too_big(compiled: Compiled, subject: str, values: Mapping[str, Any]) -> str | None:
    """Why this message would be too big to render, or None. Costs lengths, not rendering."""
    size = compile_subject(subject).size(values) + compiled.size(values)
    if size <= MAX_RENDERED_CHARS:
        return None
    return (
        f"the message would be {size / (1 << 20):.1f} MiB once its parameters are filled in; "
        f"a message is at most {MAX_RENDERED_CHARS >> 20} MiB before attachments"
    )
