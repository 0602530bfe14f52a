from __future__ import annotations

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.tasks.addresses import normalise_recipient, recipient_problem


def test_internationalised_domains_are_sent_to_as_a_labels() -> None:
    assert normalise_recipient("Ann@Bücher.de", field="to") == "Ann@xn--bcher-kva.de"
    assert normalise_recipient(" bob@Example.COM ", field="to") == "bob@example.com"


def test_a_non_ascii_local_part_is_refused_with_a_reason() -> None:
    assert "SMTPUTF8" in (recipient_problem("jöhn@example.com") or "")
    with pytest.raises(BadInput) as raised:
        normalise_recipient("jöhn@example.com", field="recipients")
    assert raised.value.field == "recipients"


@pytest.mark.parametrize(
    "value",
    ["", "no-at-sign", "a@b", "x" * 65 + "@example.com", "a\r\nb@example.com", '"q"@example.com'],
)
def test_invalid_addresses(value: str) -> None:
    assert recipient_problem(value) is not None
