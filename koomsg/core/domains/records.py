"""The DNS records a sender domain must publish (user guide figure 5-3).

Targets come from configuration; each defaults to a name under the host of
``KOOMSG_PUBLIC_URL``, so a single-host install needs no extra settings.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from koomsg.config import Settings
from koomsg.core.domains.dkim import txt_value


class RecordType(enum.StrEnum):
    CNAME = "CNAME"
    MX = "MX"
    TXT = "TXT"


class RecordKind(enum.StrEnum):
    """What a record is for; decides how verify.py checks it."""

    DMARC = "DMARC"
    TRACKING = "TRACKING"
    MX = "MX"
    SPF = "SPF"
    DKIM = "DKIM"


# What records point at when KOOMSG_PUBLIC_URL names no DNS host (the embedded default
# is http://127.0.0.1:8000): a reserved name, so nobody mistakes it for a real target.
FALLBACK_HOST = "koomsg.localhost"


def _dns_host(host: str) -> str:
    name = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return name if "." in name else FALLBACK_HOST
    return FALLBACK_HOST


@dataclass(frozen=True)
class DnsTargets:
    spf_include: str
    dmarc_target: str
    tracking_target: str
    mx_host: str

    @classmethod
    def from_settings(cls, settings: Settings) -> DnsTargets:
        host = _dns_host(settings.public_host)
        return cls(
            spf_include=settings.spf_include or host,
            dmarc_target=settings.dmarc_target or f"_dmarc.{host}",
            tracking_target=settings.tracking_target or host,
            mx_host=settings.mx_host or f"mx.{host}",
        )


@dataclass(frozen=True)
class ExpectedRecord:
    kind: RecordKind
    type: RecordType
    name: str
    value: str
    required: bool
    target: str = ""  # the host name to compare with (CNAME/MX target, SPF include)


def spf_value(include: str) -> str:
    return f"v=spf1 include:{include} ~all"


def expected_records(
    *, domain: str, selector: str, public_key: str, targets: DnsTargets
) -> list[ExpectedRecord]:
    def record(
        kind: RecordKind, rtype: RecordType, name: str, value: str, target: str
    ) -> ExpectedRecord:
        # Not required: MX only lets the domain receive bounces; sending works without it.
        required = kind is not RecordKind.MX
        return ExpectedRecord(kind, rtype, name, value, required, target)

    dmarc, tracking, mx = targets.dmarc_target, targets.tracking_target, targets.mx_host
    return [
        record(RecordKind.DMARC, RecordType.CNAME, f"_dmarc.{domain}", dmarc, dmarc),
        record(RecordKind.TRACKING, RecordType.CNAME, f"tracking.{domain}", tracking, tracking),
        record(RecordKind.MX, RecordType.MX, domain, mx, mx),
        record(
            RecordKind.SPF,
            RecordType.TXT,
            domain,
            spf_value(targets.spf_include),
            targets.spf_include,
        ),
        record(
            RecordKind.DKIM,
            RecordType.TXT,
            f"{selector}._domainkey.{domain}",
            txt_value(public_key),
            public_key,
        ),
    ]
