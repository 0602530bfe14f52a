"""Where the smtp transport connects, and with what TLS: the relay, or each domain's MX.

Relay mode (``KOOMSG_SMTP_URL`` set)::

    smtp://host:25                    plain, no STARTTLS
    smtp+starttls://user:pass@host:587  STARTTLS required, then AUTH
    smtps://user:pass@host:465        implicit TLS, then AUTH

with optional query parameters ``tls_verify=0`` (accept any certificate) and
``cafile=/path/ca.pem`` (trust that CA, e.g. a test's self-signed one).

Direct mode (``KOOMSG_SMTP_URL`` unset): each recipient domain's MX hosts are
looked up with dnspython (``KOOMSG_DNS_NAMESERVERS``), in preference order
(ties in random order), falling back to the domain's own A/AAAA records when
it has no MX, on port ``KOOMSG_SMTP_DIRECT_PORT``. A domain that does not
exist or publishes a null MX is a permanent failure; a failed lookup a
temporary one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from koomsg.config import ConfigError, Settings
from koomsg.core.netguard import Network, refusal
from koomsg.plugins.types import DeliveryResult


@dataclass(frozen=True)
class Relay:
    """A parsed ``KOOMSG_SMTP_URL``."""

    host: str
    port: int
    mode: str  # "plain", "starttls" or "tls"
    username: str | None
    password: str | None
    verify: bool
    cafile: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay | None:
        """The configured relay; None means direct delivery to each domain's MX."""
        return cls.parse(settings.smtp_url) if settings.smtp_url else None

    @classmethod
    def parse(cls, url: str) -> Relay:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        mode = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}.get(scheme)
        if mode is None:
            expected = "smtp://, smtp+starttls:// or smtps://"
            raise ConfigError("KOOMSG_SMTP_URL", f"unsupported scheme {parts.scheme!r}: {expected}")
        query = parse_qs(parts.query)
        default_port = {"plain": 25, "starttls": 587, "tls": 465}[mode]
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            mode=mode,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            verify=query.get("tls_verify", ["1"])[-1].lower() not in {"0", "false", "no"},
            cafile=query.get("cafile", [None])[-1],
        )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def route(self) -> Route:
        return Route("relay", self.host, (self.host,), self.port)


@dataclass(frozen=True)
class Route:
    """Where to connect: a pool key, candidate addresses, and how to talk."""

    key: str
    server_name: str
    addresses: tuple[str, ...]
    port: int


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """A caching resolver on ``KOOMSG_DNS_NAMESERVERS`` (else the system's)."""
    if settings.dns_nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in settings.dns_nameservers
        ]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = settings.dns_timeout_seconds
    resolver.cache = dns.resolver.Cache()
    return resolver


async def direct_routes(
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    port: int,
    *,
    allowed_networks: Sequence[Network] = (),
) -> list[Route] | DeliveryResult:
    """The routes to ``domain``'s mail hosts in the order to try them, or why there are none.

    The recipient's DNS is not ours: addresses that are not public internet
    addresses (loopback, private, link-local, metadata services…) are dropped
    before any connection unless the operator allowed their network
    (``KOOMSG_ALLOWED_PRIVATE_NETWORKS``); see core/netguard.py.
    """
    hosts = await mx_hosts(resolver, domain)
    if isinstance(hosts, DeliveryResult):
        return hosts
    routes = []
    refused: list[str] = []
    for host in hosts:
        found = await addresses(resolver, host)
        public = tuple(a for a in found if refusal(a, allowed_networks) is None)
        refused.extend(a for a in found if a not in public)
        if public:
            routes.append(Route(f"{host}:{port}", host, public, port))
    if not routes and refused:
        # Said in our words: nothing was sent to those addresses, so no reply exists.
        shown = ", ".join(sorted(set(refused))[:5])
        return DeliveryResult.permanent(
            f"refused: the mail hosts of {domain} point at non-public addresses ({shown}), "
            "which koomsg does not connect to"
        )
    if not routes:
        return DeliveryResult.temporary(f"no address found for any mail host of {domain}")
    return routes


async def mx_hosts(resolver: dns.asyncresolver.Resolver, domain: str) -> list[str] | DeliveryResult:
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN:
        return DeliveryResult.permanent(f"550 5.1.2 domain {domain} does not exist")
    except dns.resolver.NoAnswer:
        return [domain]
    except (dns.exception.DNSException, ValueError) as exc:
        return DeliveryResult.temporary(f"DNS lookup of MX for {domain} failed: {exc}")
    records = sorted(answer, key=lambda rr: (rr.preference, random.random()))  # type: ignore[attr-defined]
    hosts = [
        rr.exchange.to_text(omit_final_dot=True) for rr in records if rr.exchange != dns.name.root
    ]  # type: ignore[attr-defined]
    if not hosts:
        return DeliveryResult.permanent(f"556 5.1.10 {domain} accepts no mail (null MX)")
    return hosts


async def addresses(resolver: dns.asyncresolver.Resolver, host: str) -> tuple[str, ...]:
    with contextlib.suppress(ValueError):
        return (str(ipaddress.ip_address(host.strip("[]"))),)
    found: list[str] = []
    # IPv4 first: IPv6 routes from servers are more often broken than absent.
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(host, rdtype)
        except (dns.exception.DNSException, ValueError):
            continue
        found.extend(rr.address for rr in answer)  # type: ignore[attr-defined]
    return tuple(found)
