"""The plain-text alternative of a rich body, for clients that show no HTML.

Links become ``text (url)``; paragraphs, headings, rows and line breaks keep
their lines; list items get a dash. Placeholders are ordinary text here, so
the result is compiled and filled like a plain body.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul",
    "ol", "dl", "hr", "center", "caption", "thead", "tbody", "tfoot",
}  # fmt: skip
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "hr"}
_SKIP = {"script", "style", "head", "title"}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.links: list[tuple[str | None, int]] = []
        self.skipping = 0
        self.pre = 0

    def _break(self, count: int) -> None:
        """End the line with at least ``count`` line breaks (nested blocks do not add up)."""
        have = 0
        for piece in reversed(self.out):
            stripped = piece.rstrip(" ")
            have += len(stripped) - len(stripped.rstrip("\n"))
            if stripped.strip("\n"):
                break
        else:
            return  # nothing written yet: no leading blank lines
        if have < count:
            self.out.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")  # two in a row are a blank line on purpose
        elif tag == "li":
            self._break(1)
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK:
            self._break(2 if tag in _PARAGRAPH else 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith(("#", "mailto:")) and href != label:
                self.out.append(f" ({href})" if label else href)
        if tag == "pre":
            self.pre = max(self.pre - 1, 0)
        if tag in _BLOCK:
            self._break(2 if tag in _PARAGRAPH else 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.out.append(data if self.pre else _SPACES.sub(" ", data))


def html_to_text(html: str) -> str:
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    lines = [line.strip(" ") for line in "".join(writer.out).replace("\xa0", " ").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
