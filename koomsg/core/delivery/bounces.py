"""Which delivery failures are hard bounces: the address itself is bad, so suppress it.

Every transport reports SMTP-style replies (a code and text) on its
``DeliveryResult``; classifying them is delivery policy, so it lives in core
and applies to every transport alike, not only the built-in SMTP one.
"""

from __future__ import annotations

import re

from koomsg.plugins.types import DeliveryResult, DeliveryStatus

# Enhanced status codes (RFC 3463): 5.1.0 bad address, 5.1.1 bad mailbox,
# 5.1.2 bad destination domain, 5.1.10 null MX (RFC 7505).
_HARD_CODES = re.compile(r"\b5\.1\.(?:0|1|2|10)\b")
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such user|no such mailbox|mailbox not found|"
    r"address rejected|does not exist|invalid recipient|recipient not found",
    re.IGNORECASE,
)


def is_hard_bounce(result: DeliveryResult) -> bool:
    """True when a permanent failure says the address itself is bad (suppress it).

    Enhanced codes 5.1.1 (bad mailbox), 5.1.0 and 5.1.2 (bad address or domain)
    and 5.1.10 (null MX), or a 5xx reply saying "user unknown", "no such user",
    "mailbox not found" and the like. A full mailbox, policy or spam refusal is
    not a hard bounce.
    """
    if result.status is not DeliveryStatus.PERMANENT_FAILURE:
        return False
    reply = result.reply
    if _HARD_CODES.search(reply):
        return True
    code = result.code if result.code is not None else _leading_code(reply)
    return code is not None and 500 <= code < 600 and bool(_HARD_WORDS.search(reply))


def _leading_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None
