"""Sortable, prefixed identifiers: ``<prefix>_<26 Crockford base32 chars>``.

The first 48 bits are milliseconds since the epoch, so ids sort by creation
time and keyset pagination on the id alone gives "newest first". Within one
millisecond the random part is incremented, keeping ids from one process
strictly increasing.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random += 1
        else:
            _last_random = secrets.randbits(79)
        _last_ms = now_ms
        value = (now_ms << 80) | (_last_random & ((1 << 80) - 1))
    return f"{prefix}_{_encode(value)}"


def prefix_of(identifier: str) -> str:
    return identifier.split("_", 1)[0]


def id_floor(prefix: str, moment: datetime) -> str:
    """The smallest id ``new_id(prefix)`` could return at ``moment``: ids created at or after
    it compare greater or equal, which turns a time range into an index range on the id."""
    ms = int(moment.timestamp() * 1000)
    return f"{prefix}_{_encode(max(ms, 0) << 80)}"
