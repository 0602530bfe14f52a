"""Which addresses koomsg may connect to on a tenant's behalf (no SSRF).

Direct-MX delivery connects wherever a recipient domain's DNS points, and
a tenant controls that DNS: without a guard, "MX 127.0.0.1" or an A record
of 169.254.169.254 makes koomsg talk to its own host or the cloud metadata
service and report the replies back. Every outbound connection made for a
tenant asks ``refusal`` first: loopback, private, link-local, CGNAT,
multicast, reserved and unspecified addresses are refused unless the
operator lists their network in ``KOOMSG_ALLOWED_PRIVATE_NETWORKS``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Besides what ipaddress flags as private/reserved: shared address space (RFC 6598),
# which is_private does not cover, and NAT64 prefixes that embed IPv4 targets.
_ALSO_REFUSED = tuple(
    ipaddress.ip_network(net) for net in ("100.64.0.0/10", "64:ff9b::/96", "64:ff9b:1::/48")
)


def parse_networks(text: str) -> tuple[Network, ...]:
    """``KOOMSG_ALLOWED_PRIVATE_NETWORKS``: comma-separated CIDRs; ValueError when malformed."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def refusal(address: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why koomsg must not connect to ``address`` (an IP literal), or None when it may."""
    try:
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed):
        return None
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or any(ip in network for network in _ALSO_REFUSED)
        or not ip.is_global
    ):
        return f"the address {ip} is not a public internet address; connection refused"
    return None
