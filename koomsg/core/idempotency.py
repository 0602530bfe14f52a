"""Idempotency keys: one rule for every mutation that takes an ``idempotencyKey``.

A client that timed out cannot know whether its call went through; it retries
with the same key, and the retry answers what the first call did instead of
doing it again. Keys belong to one enterprise and are remembered for
``IDEMPOTENCY_WINDOW``; after that a key is free again.
"""

from __future__ import annotations

from datetime import timedelta

from koomsg.core.errors import BadInput

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY = 255


def clean_key(key: str | None) -> str | None:
    """The key as given, or None; BAD_USER_INPUT ``idempotencyKey`` when blank or too long."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY:
        raise BadInput("idempotencyKey", f"an idempotency key has 1 to {MAX_KEY} characters")
    return key
