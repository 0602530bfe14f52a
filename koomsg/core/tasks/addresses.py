"""Recipient addresses: validated without DNS, normalised once, compared folded."""

from __future__ import annotations

import unicodedata

import idna
from email_validator import EmailNotValidError, validate_email

from koomsg.core.errors import BadInput

MAX_LOCAL_PART = 64
MAX_ADDRESS = 254


def recipient_problem(value: str) -> str | None:
    """Why ``value`` is not a deliverable recipient address, or None when it is."""
    if not value or not value.strip():
        return "empty address"
    text = value.strip()
    if any(ch in text for ch in "\r\n\0"):
        return "address contains a line break or NUL"
    try:
        valid = validate_email(text, check_deliverability=False, allow_quoted_local=False)
    except EmailNotValidError as exc:
        return str(exc)
    # email-validator 2.4 lets a 65-character local part through (RFC 5321 says 64).
    if len(valid.local_part) > MAX_LOCAL_PART:
        return f"the part before @ has more than {MAX_LOCAL_PART} characters"
    if len(valid.normalized) > MAX_ADDRESS:
        return f"the address has more than {MAX_ADDRESS} characters"
    if valid.ascii_email is None:
        # A non-ASCII local part needs SMTPUTF8 end to end, which koomsg does not send.
        return "non-ASCII characters before the @ are not supported (SMTPUTF8)"
    return None


def normalise_recipient(value: str, *, field: str) -> str:
    """The normalised address, or BAD_USER_INPUT naming ``field``."""
    problem = recipient_problem(value)
    if problem is not None:
        raise BadInput(field, f"{value!r} is not a valid email address: {problem}")
    return normalised_address(value)


def normalised_address(value: str) -> str:
    """The form messages are sent to: internationalised domains as A-labels (IDNA)."""
    valid = validate_email(value.strip(), check_deliverability=False)
    return valid.ascii_email or valid.normalized


def display_address(address: str) -> str:
    """An address as people read it: A-labels (``xn--``) of the domain shown in Unicode,
    NFC. What goes on the wire, and is stored, stays the ASCII form."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return address
    try:
        shown = idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return address  # not valid IDNA after all: show what is stored
    return f"{local}@{unicodedata.normalize('NFC', shown)}"
