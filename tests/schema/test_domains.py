"""Sender domains through the API, verified against a real DNS server on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.domains import service as domains_service
from koomsg.core.domains.models import SenderDomain
from koomsg.core.errors import Conflict
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.runtime import Runtime
from koomsg.testing.dns import LocalDnsServer, zone_for
from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows

DOMAIN_FIELDS = """id name unicodeName status dkimSelector lastVerifiedAt createdAt
    records { type name expectedValue foundValues status required hint }"""
CREATE = f"""mutation($name: String!) {{
    createSenderDomain(input: {{name: $name}}) {{ {DOMAIN_FIELDS} }} }}"""
UPDATE = f"""mutation($id: ID!, $name: String!) {{
    updateSenderDomain(id: $id, input: {{name: $name}}) {{ {DOMAIN_FIELDS} }} }}"""
VERIFY = f"mutation($id: ID!) {{ verifySenderDomain(id: $id) {{ {DOMAIN_FIELDS} }} }}"
DELETE = "mutation($id: ID!, $cascade: Boolean) { deleteSenderDomain(id: $id, cascade: $cascade) }"
LIST = """query($filter: SenderDomainFilter, $first: Int, $after: String) {
    senderDomains(filter: $filter, first: $first, after: $after) {
        totalCount edges { cursor node { id name status } }
        pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
CREATE_ADDRESS = """mutation($domainId: ID!, $prefix: String!) {
    createSenderAddress(input: {domainId: $domainId, prefix: $prefix}) { id address } }"""


@pytest.fixture
def koomsg_env(dns_server: LocalDnsServer) -> dict[str, str]:
    return {
        "KOOMSG_DNS_NAMESERVERS": dns_server.address,
        "KOOMSG_DNS_TIMEOUT": "1",
        "KOOMSG_SPF_INCLUDE": "spf.mail.test",
        "KOOMSG_TRACKING_TARGET": "track.mail.test",
    }


async def create(api: Api, name: str = "example.com", **kw: Any) -> dict[str, Any]:
    return (await api(CREATE, {"name": name}, **kw)).ok()["createSenderDomain"]  # type: ignore[no-any-return]


def records(domain: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["type"], r["name"]): r for r in domain["records"]}


async def test_a_new_domain_lists_the_records_to_publish(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    domain = await create(api, "Example.COM.")
    assert domain["name"] == domain["unicodeName"] == "example.com"
    assert domain["id"].startswith("dom_")
    assert domain["status"] == "VERIFICATION_FAILED"
    assert domain["lastVerifiedAt"] is None
    selector = domain["dkimSelector"]
    found = records(domain)
    assert list(found) == [
        ("CNAME", "_dmarc.example.com"),
        ("CNAME", "tracking.example.com"),
        ("MX", "example.com"),
        ("TXT", "example.com"),
        ("TXT", f"{selector}._domainkey.example.com"),
    ]
    # Defaults derive from KOOMSG_PUBLIC_URL's host unless configured; an IP address (the
    # tests' 127.0.0.1) is no DNS target, so a reserved name stands in.
    assert found["CNAME", "_dmarc.example.com"]["expectedValue"] == "_dmarc.koomsg.localhost"
    assert found["MX", "example.com"]["expectedValue"] == "mx.koomsg.localhost"
    assert found["CNAME", "tracking.example.com"]["expectedValue"] == "track.mail.test"
    assert found["TXT", "example.com"]["expectedValue"] == "v=spf1 include:spf.mail.test ~all"
    assert found["TXT", f"{selector}._domainkey.example.com"]["expectedValue"].startswith(
        "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"  # RSA-2048
    )
    assert [r["required"] for r in domain["records"]] == [True, True, False, True, True]
    assert all(
        r["status"] == "FAILED" and "not verified yet" in r["hint"] for r in domain["records"]
    )


async def test_internationalised_names_are_stored_as_a_labels(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    domain = await create(api, "Bücher.example")
    assert (domain["name"], domain["unicodeName"]) == ("xn--bcher-kva.example", "bücher.example")
    (await api(CREATE, {"name": "xn--bcher-kva.example"})).error("CONFLICT", "name")
    listed = (await api(LIST, {"filter": {"name": "bücher"}})).ok()["senderDomains"]
    assert [e["node"]["id"] for e in listed["edges"]] == [domain["id"]]


@pytest.mark.parametrize(
    "name",
    ["a" * 63 + ".com", "exa mple.com", "-x.com", "a..b.com", "", "com", "x_y.com", "bad\n.com"],
)
async def test_bad_names_write_nothing(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, name: str
) -> None:
    (await api(CREATE, {"name": name})).error("BAD_USER_INPUT", "name")
    assert await count_rows(runtime, "sender_domain") == 0
    assert await count_rows(runtime, "dkim_key") == 0


async def test_ten_domains_at_most_and_no_duplicates(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, make_enterprise: Any
) -> None:
    for i in range(10):
        await create(api, f"d{i}.example.com")
    (await api(CREATE, {"name": "EXAMPLE.com"})).error("CONFLICT")
    assert await count_rows(runtime, "sender_domain") == 10
    assert await count_rows(runtime, "dkim_key") == 10
    assert (await api(LIST)).ok()["senderDomains"]["totalCount"] == 10

    (
        await api(
            DELETE,
            {"id": (await api(LIST, {"first": 1})).ok()["senderDomains"]["edges"][0]["node"]["id"]},
        )
    ).ok()
    (await api(CREATE, {"name": "D1.example.com."})).error("CONFLICT", "name")
    assert await count_rows(runtime, "sender_domain") == 9
    # The same name in another enterprise is that enterprise's business.
    other = await make_enterprise("Other")
    await create(api, "d1.example.com", key=other.key)


async def test_verification_follows_the_zone(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer
) -> None:
    domain = await create(api)
    dns_server.set_zone(zone_for(domain["records"], skip=["MX"], split=100))
    verified = (await api(VERIFY, {"id": domain["id"]})).ok()["verifySenderDomain"]
    assert verified["status"] == "VERIFICATION_PASSED"
    assert verified["lastVerifiedAt"] is not None
    by_type = records(verified)
    mx = by_type["MX", "example.com"]
    assert mx["status"] == "FAILED" and "does not exist" not in mx["hint"]  # the name has TXT
    dkim_name = f"{domain['dkimSelector']}._domainkey.example.com"
    assert by_type["TXT", dkim_name]["foundValues"] == [by_type["TXT", dkim_name]["expectedValue"]]

    # The tracking CNAME moved away: the domain fails, and says where it points.
    dns_server.set_zone(
        [
            *zone_for(domain["records"], skip=["tracking.example.com"]),
            "tracking.example.com. 300 IN CNAME old.provider.test.",
        ]
    )
    failed = (await api(VERIFY, {"id": domain["id"]})).ok()["verifySenderDomain"]
    assert failed["status"] == "VERIFICATION_FAILED"
    tracking = records(failed)["CNAME", "tracking.example.com"]
    assert tracking["foundValues"] == ["old.provider.test"]
    assert "points to old.provider.test, not track.mail.test" in tracking["hint"]
    stored = (await api(LIST, {"filter": {"status": "VERIFICATION_FAILED"}})).ok()["senderDomains"]
    assert stored["totalCount"] == 1


async def test_renaming_resets_status_and_key(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer, runtime: Runtime
) -> None:
    domain = await create(api)
    await create(api, "taken.example.com")
    dns_server.set_zone(zone_for(domain["records"]))
    assert (await api(VERIFY, {"id": domain["id"]})).ok()["verifySenderDomain"]["status"] == (
        "VERIFICATION_PASSED"
    )
    (await api(UPDATE, {"id": domain["id"], "name": "Taken.example.com"})).error("CONFLICT", "name")
    (await api(UPDATE, {"id": domain["id"], "name": "bad..name"})).error("BAD_USER_INPUT", "name")
    assert await count_rows(runtime, "dkim_key") == 2

    renamed = (await api(UPDATE, {"id": domain["id"], "name": "new.example.com"})).ok()[
        "updateSenderDomain"
    ]
    assert renamed["name"] == "new.example.com"
    assert renamed["status"] == "VERIFICATION_FAILED" and renamed["lastVerifiedAt"] is None
    assert renamed["dkimSelector"] != domain["dkimSelector"]
    assert all(r["name"].endswith("new.example.com") for r in renamed["records"])
    # The old key stays stored, inactive, so a rollback or audit can still find it.
    assert await count_rows(runtime, "dkim_key") == 3


async def test_delete_refuses_domains_in_use_unless_cascading(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer, runtime: Runtime
) -> None:
    domain = await create(api)
    dns_server.set_zone(zone_for(domain["records"]))
    (await api(VERIFY, {"id": domain["id"]})).ok()
    (await api(CREATE_ADDRESS, {"domainId": domain["id"], "prefix": "info"})).ok()

    refused = (await api(DELETE, {"id": domain["id"]})).error("CONFLICT")
    assert "still has 1 sender address" in refused["message"]
    assert await count_rows(runtime, "sender_domain") == 1

    # Guards (koomsg.core.flows lists the real ones) run before anything is deleted.
    async def scheduled_task_guard(session: AsyncSession, domain: SenderDomain) -> None:
        raise Conflict(f"the scheduled task 'Newsletter' still sends from {domain.name}")

    root = Principal(PrincipalKind.ENTERPRISE_ROOT, "Acme", "key", enterprise_id=enterprise.id)
    with pytest.raises(Conflict, match="'Newsletter'"):
        async with runtime.db.transaction() as session:
            await domains_service.delete_domain(
                session,
                principal=root,
                domain_id=domain["id"],
                guards=[scheduled_task_guard],
                cascade=True,
            )
    assert await count_rows(runtime, "sender_address") == 1

    deleted = (await api(DELETE, {"id": domain["id"], "cascade": True})).ok()["deleteSenderDomain"]
    assert deleted == domain["id"]
    for table in ("sender_domain", "dkim_key", "sender_address"):
        assert await count_rows(runtime, table) == 0
    (await api(DELETE, {"id": domain["id"]})).error("NOT_FOUND", "id")


async def test_another_enterprises_domain_is_not_found(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Any
) -> None:
    domain = await create(api)
    other = await make_enterprise("Other")
    (await api(VERIFY, {"id": domain["id"]}, key=other.key)).error("NOT_FOUND", "id")
    (await api(UPDATE, {"id": domain["id"], "name": "x.example.com"}, key=other.key)).error(
        "NOT_FOUND"
    )
    (await api(DELETE, {"id": domain["id"]}, key=other.key)).error("NOT_FOUND")
    node = "query($id: ID!) { node(id: $id) { id ... on SenderDomain { name } } }"
    (await api(node, {"id": domain["id"]}, key=other.key)).error("NOT_FOUND")
    assert (await api(node, {"id": domain["id"]})).ok()["node"]["name"] == "example.com"
    assert (await api(LIST, key=other.key)).ok()["senderDomains"]["totalCount"] == 0


async def test_pages_are_newest_first(api: Api, enterprise: EnterpriseHandle) -> None:
    made = [(await create(api, f"p{i}.example.com"))["id"] for i in range(3)]
    first = (await api(LIST, {"first": 2})).ok()["senderDomains"]
    assert [e["node"]["id"] for e in first["edges"]] == made[:0:-1]
    assert first["pageInfo"]["hasNextPage"] and first["totalCount"] == 3
    rest = (await api(LIST, {"first": 2, "after": first["pageInfo"]["endCursor"]})).ok()[
        "senderDomains"
    ]
    assert [e["node"]["id"] for e in rest["edges"]] == made[:1]
    assert not rest["pageInfo"]["hasNextPage"] and rest["pageInfo"]["hasPreviousPage"]
    filtered = (await api(LIST, {"filter": {"name": "P1.EXAMPLE"}})).ok()["senderDomains"]
    assert [e["node"]["name"] for e in filtered["edges"]] == ["p1.example.com"]
