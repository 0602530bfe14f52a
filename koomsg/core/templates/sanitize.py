"""Rich bodies: limits checked first, then nh3 keeps what email clients render.

nh3 slows down sharply on deeply nested markup (100 000 nested ``<div>``
take about 15 s), so size and nesting depth are refused before it runs.
Kept: tables, images, links, inline styles and the presentational attributes
email layouts rely on. Dropped: scripts, event handlers, ``javascript:`` and
other non-web URLs, forms, frames, ``<style>`` blocks.
"""

from __future__ import annotations

import codecs
import re

import nh3

from koomsg.core.errors import BadInput

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 200

_TAGS = {
    "a", "abbr", "b", "big", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
_COMMON_ATTRS = {
    "style", "align", "valign", "width", "height", "bgcolor", "border", "class", "dir", "lang",
    "title", "id",
}  # fmt: skip
_ATTRIBUTES = {
    "*": _COMMON_ATTRS,
    "a": {"href", "target", "name"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "table": {"cellpadding", "cellspacing", "role", "background"},
    "td": {"colspan", "rowspan", "nowrap", "background"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "font": {"color", "face", "size"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
# Declarations that let CSS reach a script (old IE) are dropped whatever the property.
_UNSAFE_CSS = re.compile(r"expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding", re.I)

# Tags the HTML parser closes by itself, and void tags, never deepen nesting.
_FLAT = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "td", "th", "tr", "option", "dt", "dd",
}  # fmt: skip
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        kept = [d for d in value.split(";") if d.strip() and not _UNSAFE_CSS.search(d)]
        return "; ".join(d.strip() for d in kept) or None
    return value


def check_limits(html: str, *, field: str = "body") -> None:
    """Refuse what would make the sanitiser slow: over 2 MB, or nested over 200 deep."""
    data = html.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise BadInput(field, f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    depth = 0
    for match in _TAG.finditer(data):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name.decode() in _FLAT or self_closing:
            continue
        if closing:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > MAX_DEPTH:
            raise BadInput(field, f"the body nests elements more than {MAX_DEPTH} levels deep")


def sanitize_html(html: str, *, field: str = "body") -> str:
    check_limits(html, field=field)
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head", "template", "noscript"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)


def decode_html_file(data: bytes, *, field: str = "htmlFile") -> str:
    """The text of an uploaded HTML file: BOM, then ``<meta charset>`` / http-equiv, else UTF-8."""
    if len(data) > MAX_BODY_BYTES:
        raise BadInput(field, f"the HTML file is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return _decode(data, encoding, field)
    # Browsers look for the declaration near the top only; so do we.
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        name = declared.group(1).decode("ascii")
        try:
            encoding = codecs.lookup(name).name
        except LookupError:
            raise BadInput(field, f"the HTML file declares an unknown charset {name!r}") from None
        return _decode(data, encoding, field)
    return _decode(data, "utf-8", field, hint=" and declares no charset (<meta charset=...>)")


def _decode(data: bytes, encoding: str, field: str, hint: str = "") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BadInput(
            field, f"the HTML file is not valid {encoding} (byte {exc.start}){hint}"
        ) from None
