"""Normalising a sender domain name as people type it into what DNS stores."""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna

from koomsg.core.errors import BadInput

MAX_NAME_CHARS = 66  # the hosted console's limit (user guide 5.2)
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class DomainName:
    ascii: str  # A-labels: what DNS, DKIM d= and addresses use
    unicode: str  # U-labels: what people read


def normalise_domain(raw: str, *, field: str = "name") -> DomainName:
    """Lower case, no trailing dot, IDNs as A-labels; anything else is BAD_USER_INPUT."""
    name = raw.strip().rstrip(".") if raw.strip() != "." else ""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise BadInput(field, f"a sender domain name has 1 to {MAX_NAME_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in name):
        raise BadInput(field, "a domain name cannot contain spaces or control characters")
    labels = name.split(".")
    if any(not label for label in labels):
        raise BadInput(field, "a domain name cannot have empty labels (two dots in a row)")
    if len(labels) < 2:
        raise BadInput(field, "enter a registered domain name such as example.com")
    try:
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise BadInput(field, f"not a valid domain name: {exc}") from None
    ascii_labels = ascii_name.split(".")
    for label in ascii_labels:
        if not _LDH_LABEL.match(label):
            raise BadInput(
                field,
                f"label {label!r} is not valid: use letters, digits and inner hyphens, "
                "at most 63 characters",
            )
    if ascii_labels[-1].isdigit():
        raise BadInput(field, "an IP address is not a domain name")
    if len(ascii_name) > 253:
        raise BadInput(field, "the domain name is longer than DNS allows (253 characters)")
    return DomainName(ascii=ascii_name, unicode=idna.decode(ascii_name))


def unicode_form(ascii_name: str) -> str:
    try:
        return str(idna.decode(ascii_name))
    except idna.IDNAError:
        return ascii_name
