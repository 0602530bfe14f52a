from __future__ import annotations

import pytest

from koomsg.core.domains.names import normalise_domain
from koomsg.core.errors import BadInput


@pytest.mark.parametrize(
    ("raw", "ascii", "unicode"),
    [
        ("Example.COM.", "example.com", "example.com"),
        ("  mail.example.co.uk ", "mail.example.co.uk", "mail.example.co.uk"),
        ("Bücher.de", "xn--bcher-kva.de", "bücher.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de", "bücher.de"),
        ("a" * 62 + ".com", "a" * 62 + ".com", "a" * 62 + ".com"),
    ],
)
def test_names_are_normalised(raw: str, ascii: str, unicode: str) -> None:
    name = normalise_domain(raw)
    assert (name.ascii, name.unicode) == (ascii, unicode)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a" * 63 + ".com", "1 to 66"),  # 67 characters
        ("", "1 to 66"),
        ("exa mple.com", "spaces"),
        ("-x.com", "hyphen"),
        ("x-.com", "hyphen"),
        ("a..b.com", "empty labels"),
        ("localhost", "registered domain"),
        ("10.0.0.1", "IP address"),
        ("under_score.com", "not allowed"),
        ("bad\r\n.com", "spaces or control"),
    ],
)
def test_bad_names_are_refused_with_the_field(raw: str, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        normalise_domain(raw)
    assert caught.value.field == "name"
    assert reason in caught.value.message
