"""Record checks against a real DNS server on loopback, its zone changed between steps."""

from __future__ import annotations

import time

import pytest

from koomsg.core.domains.dkim import generate_key
from koomsg.core.domains.records import DnsTargets, ExpectedRecord, RecordKind, expected_records
from koomsg.core.domains.verify import RecordCheck, ResolverClient, check_records, passes
from koomsg.testing.dns import LocalDnsServer, SilentDnsServer, zone_line

TARGETS = DnsTargets(
    spf_include="spf.mail.test",
    dmarc_target="_dmarc.mail.test",
    tracking_target="track.mail.test",
    mx_host="mx.mail.test",
)
DOMAIN = "example.com"
_, PUBLIC_KEY = generate_key()
_, OTHER_KEY = generate_key()
RECORDS = expected_records(domain=DOMAIN, selector="km1", public_key=PUBLIC_KEY, targets=TARGETS)


def published(*, skip: tuple[RecordKind, ...] = (), split: int = 255) -> list[str]:
    return [zone_line(r.type, r.name, r.value, split=split) for r in RECORDS if r.kind not in skip]


def record(kind: RecordKind) -> ExpectedRecord:
    return next(r for r in RECORDS if r.kind is kind)


async def check(dns: LocalDnsServer, seconds: float = 2) -> dict[RecordKind, RecordCheck]:
    client = ResolverClient([("127.0.0.1", dns.port)], timeout=seconds)
    return {c.record.kind: c for c in await check_records(RECORDS, client=client)}


async def test_all_records_published_pass(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(published())
    checks = await check(dns_server)
    assert all(c.successful and c.hint is None for c in checks.values())
    assert passes(list(checks.values()))
    assert checks[RecordKind.DMARC].found == ["_dmarc.mail.test"]
    assert checks[RecordKind.MX].found == ["10 mx.mail.test"]


async def test_mx_is_not_required(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(published(skip=(RecordKind.MX,)))
    checks = await check(dns_server)
    assert not checks[RecordKind.MX].successful
    assert "no MX record" in (checks[RecordKind.MX].hint or "")
    assert passes(list(checks.values()))


async def test_missing_cname_is_nxdomain_and_wrong_cname_names_its_target(
    dns_server: LocalDnsServer,
) -> None:
    dns_server.set_zone(
        [
            *published(skip=(RecordKind.DMARC, RecordKind.TRACKING)),
            "tracking.example.com. 300 IN CNAME elsewhere.example.net.",
        ]
    )
    checks = await check(dns_server)
    dmarc, tracking = checks[RecordKind.DMARC], checks[RecordKind.TRACKING]
    assert not dmarc.successful and "does not exist in DNS (NXDOMAIN)" in (dmarc.hint or "")
    assert not tracking.successful
    assert tracking.found == ["elsewhere.example.net"]
    assert tracking.hint == (
        "tracking.example.com points to elsewhere.example.net, not track.mail.test: "
        "change the CNAME target"
    )
    assert not passes(list(checks.values()))


async def test_name_with_other_records_but_no_cname_is_no_answer(
    dns_server: LocalDnsServer,
) -> None:
    dns_server.set_zone(
        [
            *published(skip=(RecordKind.DMARC,)),
            '_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none"',
        ]
    )
    hint = (await check(dns_server))[RecordKind.DMARC].hint or ""
    assert hint.startswith("_dmarc.example.com exists but has no CNAME record")


async def test_mx_pointing_elsewhere_names_the_hosts(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(
        [*published(skip=(RecordKind.MX,)), "example.com. 300 IN MX 5 mx.other.test."]
    )
    mx = (await check(dns_server))[RecordKind.MX]
    assert mx.found == ["5 mx.other.test"]
    assert mx.hint == "the MX records of example.com point to mx.other.test, not mx.mail.test"


async def test_spf_merged_with_other_mechanisms_passes(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(
        [
            *published(skip=(RecordKind.SPF,)),
            'example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.google.test '
            'include:spf.mail.test mx -all"',
            'example.com. 300 IN TXT "google-site-verification=abc"',
            '_spf.google.test. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 ~all"',
        ]
    )
    spf = (await check(dns_server))[RecordKind.SPF]
    assert spf.successful, spf.hint
    assert spf.found == [
        "v=spf1 ip4:192.0.2.0/24 include:_spf.google.test include:spf.mail.test mx -all"
    ]


async def test_spf_failures_say_why(dns_server: LocalDnsServer) -> None:
    others = published(skip=(RecordKind.SPF,))
    dns_server.set_zone(
        [
            *others,
            'example.com. 300 IN TXT "v=spf1 include:spf.mail.test ~all"',
            'example.com. 300 IN TXT "v=spf1 include:other.test ~all"',
        ]
    )
    spf = (await check(dns_server))[RecordKind.SPF]
    assert not spf.successful and len(spf.found) == 2
    assert (spf.hint or "").startswith("more than one SPF record at example.com")

    dns_server.set_zone([*others, 'example.com. 300 IN TXT "v=spf1 include:other.test ~all"'])
    spf = (await check(dns_server))[RecordKind.SPF]
    assert "does not include spf.mail.test" in (spf.hint or "")

    dns_server.set_zone([*others, 'example.com. 300 IN TXT "hello"'])
    spf = (await check(dns_server))[RecordKind.SPF]
    assert (spf.hint or "").startswith("no SPF record")
    assert spf.found == ["hello"]


async def test_spf_needing_more_than_ten_lookups_fails(dns_server: LocalDnsServer) -> None:
    chain = " ".join(f"include:n{i}.big.test" for i in range(5))
    dns_server.set_zone(
        [
            *published(skip=(RecordKind.SPF,)),
            'example.com. 300 IN TXT "v=spf1 include:spf.mail.test include:big.test ~all"',
            f'big.test. 300 IN TXT "v=spf1 {chain} ~all"',
            *(f'n{i}.big.test. 300 IN TXT "v=spf1 a mx ~all"' for i in range(5)),
        ]
    )
    spf = (await check(dns_server))[RecordKind.SPF]
    assert not spf.successful
    # 2 at the top, 5 in big.test, 2 in each of the 5 nested records.
    assert "needs at least 17 DNS lookups, more than the 10" in (spf.hint or "")

    dns_server.set_zone(
        [
            *published(skip=(RecordKind.SPF,)),
            'example.com. 300 IN TXT "v=spf1 include:spf.mail.test include:big.test ~all"',
            'big.test. 300 IN TXT "v=spf1 include:n0.big.test ~all"',
            'n0.big.test. 300 IN TXT "v=spf1 a mx ~all"',
            # A loop must not be followed forever.
            'spf.mail.test. 300 IN TXT "v=spf1 include:example.com ~all"',
        ]
    )
    assert (await check(dns_server))[RecordKind.SPF].successful


async def test_dkim_split_into_strings_is_joined(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(published(split=40))
    dkim = (await check(dns_server))[RecordKind.DKIM]
    assert dkim.successful
    assert dkim.found == [record(RecordKind.DKIM).value]


async def test_dkim_with_another_key_says_so(dns_server: LocalDnsServer) -> None:
    zone = published(skip=(RecordKind.DKIM,))
    dns_server.set_zone(
        [*zone, zone_line("TXT", "km1._domainkey.example.com", f"v=DKIM1; k=rsa; p={OTHER_KEY}")]
    )
    dkim = (await check(dns_server))[RecordKind.DKIM]
    assert not dkim.successful
    assert "differs from this domain's key" in (dkim.hint or "")

    dns_server.set_zone([*zone, 'km1._domainkey.example.com. 300 IN TXT "hello"'])
    dkim = (await check(dns_server))[RecordKind.DKIM]
    assert "is not a DKIM key" in (dkim.hint or "")


async def test_dns_server_failure_is_told_apart(dns_server: LocalDnsServer) -> None:
    dns_server.set_zone(published())
    dns_server.fail("km1._domainkey.example.com")
    dkim = (await check(dns_server))[RecordKind.DKIM]
    assert not dkim.successful
    assert "could not answer" in (dkim.hint or "") and "SERVFAIL" in (dkim.hint or "")


async def test_a_server_that_never_answers_times_out() -> None:
    with SilentDnsServer() as silent:
        client = ResolverClient([("127.0.0.1", silent.port)], timeout=0.3)
        started = time.monotonic()
        checks = await check_records(RECORDS, client=client)
        # Looked up concurrently: five timeouts take about one timeout, not five.
        assert time.monotonic() - started < 1.2
    for c in checks:
        assert not c.successful
        assert "did not answer" in (c.hint or "") and "within 0.3 s" in (c.hint or "")


@pytest.mark.parametrize("kind", [RecordKind.DMARC, RecordKind.SPF, RecordKind.DKIM])
async def test_each_required_record_decides(dns_server: LocalDnsServer, kind: RecordKind) -> None:
    dns_server.set_zone(published(skip=(kind,)))
    checks = await check(dns_server)
    assert [k for k, c in checks.items() if not c.successful] == [kind]
    assert not passes(list(checks.values()))
