"""Which permanent failures are hard bounces (the address is suppressed)."""

from __future__ import annotations

import pytest

from koomsg.core.delivery.bounces import is_hard_bounce
from koomsg.plugins.types import DeliveryResult


@pytest.mark.parametrize(
    ("reply", "code", "hard"),
    [
        ("550 5.1.1 <x@y>: user unknown", 550, True),
        ("550 5.1.0 no such user", 550, True),
        ("550 user unknown", 550, True),
        ("550 5.1.1 mailbox unavailable", 550, True),
        ("553 sorry, no such mailbox here", 553, True),
        # What the smtp transport reports for a domain without mail in direct mode.
        ("550 5.1.2 domain nowhere.test does not exist", 550, True),
        ("556 5.1.10 c.test accepts no mail (null MX)", 556, True),
        ("552 5.2.2 mailbox full", 552, False),
        ("550 5.7.1 rejected by policy", 550, False),
        ("554 5.7.1 spam", 554, False),
    ],
)
def test_is_hard_bounce(reply: str, code: int, hard: bool) -> None:
    assert is_hard_bounce(DeliveryResult.permanent(reply, code)) is hard
    assert not is_hard_bounce(DeliveryResult.temporary("451 4.1.1 user unknown", 451))
