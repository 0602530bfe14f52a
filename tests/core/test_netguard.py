"""Outbound connections for tenants go to public internet addresses only."""

from __future__ import annotations

from pathlib import Path

import pytest

from koomsg.config import ConfigError, load_settings
from koomsg.core.netguard import parse_networks, refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
        "169.254.169.254", "fe80::1", "100.64.0.1", "224.0.0.1", "ff02::1", "0.0.0.0", "::",
        "240.0.0.1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "fc00::1",
        "64:ff9b::7f00:1", "192.0.2.1", "198.18.0.1",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    reason = refusal(address)
    assert reason is not None and "refused" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_operators_may_allow_private_networks(tmp_path: Path) -> None:
    allowed = parse_networks("10.0.0.0/8, fd00::/8")
    assert refusal("10.1.2.3", allowed) is None and refusal("fd12::1", allowed) is None
    assert refusal("192.168.1.1", allowed) is not None
    settings = load_settings(
        {"KOOMSG_DATA_DIR": str(tmp_path), "KOOMSG_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8"}
    )
    assert refusal("127.0.0.1", settings.allowed_private_networks) is None
    with pytest.raises(ConfigError, match="KOOMSG_ALLOWED_PRIVATE_NETWORKS"):
        load_settings({"KOOMSG_DATA_DIR": str(tmp_path), "KOOMSG_ALLOWED_PRIVATE_NETWORKS": "x"})
