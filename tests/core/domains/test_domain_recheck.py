"""The periodic re-check and what delivery asks of a domain, against a real database and DNS."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import dkim as dkimpy
import pytest

from koomsg.core.clock import utcnow
from koomsg.core.domains import dkim, service
from koomsg.core.domains.models import DomainStatus, SenderDomain
from koomsg.core.domains.recheck import recheck_due_domains
from koomsg.core.errors import PreconditionFailed
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.tenancy.service import create_enterprise
from koomsg.runtime import Runtime
from koomsg.testing.dns import LocalDnsServer, dkim_dnsfunc, zone_line

TARGETS = {
    "KOOMSG_SPF_INCLUDE": "spf.mail.test",
    "KOOMSG_DMARC_TARGET": "_dmarc.mail.test",
    "KOOMSG_TRACKING_TARGET": "track.mail.test",
    "KOOMSG_MX_HOST": "mx.mail.test",
}


@pytest.fixture
def koomsg_env(dns_server: LocalDnsServer) -> dict[str, str]:
    return {**TARGETS, "KOOMSG_DNS_NAMESERVERS": dns_server.address, "KOOMSG_DNS_TIMEOUT": "1"}


async def new_domain(runtime: Runtime, name: str = "example.com") -> tuple[Principal, SenderDomain]:
    async with runtime.db.transaction() as session:
        enterprise = await create_enterprise(
            session, name="Acme", real_name_verified=True, industry_class="NON_SENSITIVE"
        )
        principal = Principal(
            PrincipalKind.ENTERPRISE_ROOT, "root", "key_x", enterprise_id=enterprise.id
        )
        domain = await service.create_domain(
            session, principal=principal, settings=runtime.settings, name=name
        )
    return principal, domain


async def publish_all(runtime: Runtime, dns: LocalDnsServer, domain: SenderDomain) -> None:
    async with runtime.db.session() as session:
        key = await service.active_key(session, domain.id)
    records = service.expected_for(domain, key, runtime.settings)
    dns.set_zone([zone_line(r.type, r.name, r.value) for r in records])


async def status_of(runtime: Runtime, domain_id: str) -> SenderDomain:
    async with runtime.db.session() as session:
        found = await session.get(SenderDomain, domain_id)
        assert found is not None
        return found


async def test_recheck_flips_a_domain_whose_records_disappeared(
    runtime: Runtime, dns_server: LocalDnsServer
) -> None:
    principal, domain = await new_domain(runtime)
    await publish_all(runtime, dns_server, domain)
    async with runtime.db.transaction() as session:
        verified = await service.verify_domain(
            session, principal=principal, settings=runtime.settings, domain_id=domain.id
        )
    assert verified.status is DomainStatus.VERIFICATION_PASSED

    # Not due yet: nothing is looked up.
    assert await recheck_due_domains(runtime.db, settings=runtime.settings) == 0

    dns_server.set_zone([])
    later = utcnow() + timedelta(seconds=runtime.settings.domain_recheck_seconds + 1)
    assert await recheck_due_domains(runtime.db, settings=runtime.settings, now=later) == 1
    flipped = await status_of(runtime, domain.id)
    assert flipped.status == DomainStatus.VERIFICATION_FAILED
    assert flipped.last_verified_at == later
    assert all(check["status"] == "FAILED" for check in flipped.checks)
    assert "NXDOMAIN" in flipped.checks[0]["hint"]

    # Records back: the next due pass lets the domain send again.
    await publish_all(runtime, dns_server, domain)
    much_later = later + timedelta(seconds=runtime.settings.domain_recheck_seconds + 1)
    assert await recheck_due_domains(runtime.db, settings=runtime.settings, now=much_later) == 1
    assert (await status_of(runtime, domain.id)).status == DomainStatus.VERIFICATION_PASSED


async def test_concurrent_passes_check_each_domain_once(
    runtime: Runtime, dns_server: LocalDnsServer
) -> None:
    _, domain = await new_domain(runtime)
    await publish_all(runtime, dns_server, domain)
    later = utcnow() + timedelta(days=2)
    counts = await asyncio.gather(
        *(recheck_due_domains(runtime.db, settings=runtime.settings, now=later) for _ in range(3))
    )
    assert sum(counts) == 1
    txt_queries = [q for q in dns_server.resolver.queries if q == ("example.com", "TXT")]
    assert len(txt_queries) == 1


async def test_signing_key_only_for_verified_domains(
    runtime: Runtime, dns_server: LocalDnsServer
) -> None:
    principal, domain = await new_domain(runtime)
    async with runtime.db.session() as session:
        with pytest.raises(PreconditionFailed, match="has not passed verification"):
            await service.signing_key_for(session, settings=runtime.settings, domain_id=domain.id)

    await publish_all(runtime, dns_server, domain)
    async with runtime.db.transaction() as session:
        await service.verify_domain(
            session, principal=principal, settings=runtime.settings, domain_id=domain.id
        )
    async with runtime.db.session() as session:
        key = await service.signing_key_for(session, settings=runtime.settings, domain_id=domain.id)
        stored = await service.active_key(session, domain.id)
    # At rest the private key is encrypted, never PEM.
    assert b"PRIVATE KEY" not in stored.private_key_encrypted.encode()
    assert key.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")

    message = b"From: info@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello\r\n"
    header = dkim.sign(
        message, domain=key.domain, selector=key.selector, private_key_pem=key.private_key_pem
    )
    assert dkimpy.verify(header + message, dnsfunc=dkim_dnsfunc(dns_server))
