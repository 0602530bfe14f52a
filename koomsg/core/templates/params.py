"""Dynamic parameters: ``{{name}}`` placeholders, as the user guide defines them.

A name has letters, digits and ``_`` only and starts with a letter (so it is
never only digits and never starts with a digit or ``_``); a template uses at
most 15 distinct names, each as often as it likes. ``{{ name }}`` is accepted
and stored as ``{{name}}``. Anything else that opens with ``{{`` is refused,
naming where it is, because a placeholder that silently stays literal would
reach every recipient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from koomsg.core.errors import BadInput

MAX_PARAMS = 15
# The longest value of one parameter, wherever it comes from (typed, sendEmail, a
# spreadsheet cell): a template of 10 000 placeholders times a long value would
# otherwise render a message of gigabytes.
MAX_PARAM_VALUE = 1024
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+\Z")


@dataclass(frozen=True)
class Placeholder:
    start: int  # offset of the opening "{{"
    end: int  # offset just after the closing "}}"
    name: str


def position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _check_name(text: str, start: int, inner: str, field: str) -> str:
    name = inner.strip()
    where = position(text, start)
    if not name:
        raise BadInput(field, f"empty placeholder {{{{}}}} at {where}")
    if "{" in name or "}" in name:
        raise BadInput(field, f"nested braces in a placeholder at {where}")
    if any(ch.isspace() for ch in name):
        raise BadInput(field, f"a parameter name cannot contain spaces ({{{{{name}}}}} at {where})")
    if not _NAME_CHARS.match(name):
        raise BadInput(
            field, f"parameter {name!r} at {where}: use only letters, digits and underscores"
        )
    if not _NAME.match(name):
        raise BadInput(
            field,
            f"parameter {name!r} at {where}: a name cannot be only digits "
            "or start with a digit or an underscore",
        )
    return name


def scan(text: str, *, field: str = "body") -> list[Placeholder]:
    """Every placeholder in ``text``, in order; a malformed one is BAD_USER_INPUT."""
    found: list[Placeholder] = []
    index = text.find("{{")
    while index != -1:
        close = text.find("}}", index + 2)
        if close == -1:
            raise BadInput(
                field, f"placeholder opened with {{{{ at {position(text, index)} is never closed"
            )
        inner = text[index + 2 : close]
        if "{" in inner:
            raise BadInput(field, f"nested braces in a placeholder at {position(text, index)}")
        name = _check_name(text, index, inner, field)
        end = close + 2
        found.append(Placeholder(index, end, name))
        index = text.find("{{", end)
    return found


def _distinct(names: Iterable[str], field: str) -> list[str]:
    ordered = list(dict.fromkeys(names))
    if len(ordered) > MAX_PARAMS:
        raise BadInput(
            field,
            f"a template uses at most {MAX_PARAMS} distinct parameters; "
            f"this one uses {len(ordered)}",
        )
    return ordered


def parse_params(text: str, *, field: str = "body") -> list[str]:
    """The distinct parameter names of ``text`` in order of first use."""
    return _distinct((p.name for p in scan(text, field=field)), field)


def normalise(text: str, *, field: str = "body") -> tuple[str, list[str]]:
    """``text`` with every placeholder written ``{{name}}``, and its parameter names."""
    placeholders = scan(text, field=field)
    names = _distinct((p.name for p in placeholders), field)
    if all(text[p.start : p.end] == f"{{{{{p.name}}}}}" for p in placeholders):
        return text, names
    parts: list[str] = []
    last = 0
    for p in placeholders:
        parts.append(text[last : p.start])
        parts.append(f"{{{{{p.name}}}}}")
        last = p.end
    parts.append(text[last:])
    return "".join(parts), names


def validate_subject(subject: str, params: Sequence[str]) -> list[str]:
    """Check a task's subject against its template's parameters; returns the names it uses.

    Called by the tasks area: the subject may use the template's parameters and
    no others. CR and LF are refused because the subject becomes a header.
    """
    if "\r" in subject or "\n" in subject:
        raise BadInput("subject", "a subject is one line: line breaks are not allowed")
    used = parse_params(subject, field="subject")
    known = set(params)
    unknown = [name for name in used if name not in known]
    if unknown:
        allowed = ", ".join(params) or "none"
        raise BadInput(
            "subject",
            f"the subject uses {', '.join(unknown)}, which the template does not define "
            f"(its parameters: {allowed})",
        )
    return used
