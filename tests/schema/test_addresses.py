"""Sender addresses through the API."""

from __future__ import annotations

from typing import Any

import pytest

from koomsg.runtime import Runtime
from koomsg.testing.dns import LocalDnsServer, zone_for
from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows

CREATE_DOMAIN = """mutation($name: String!) { createSenderDomain(input: {name: $name}) {
    id records { type name expectedValue } } }"""
VERIFY = "mutation($id: ID!) { verifySenderDomain(id: $id) { status } }"
CREATE = """mutation($input: CreateSenderAddressInput!) {
    createSenderAddress(input: $input) {
        id prefix alias address createdAt domain { id name status } } }"""
DELETE = "mutation($id: ID!) { deleteSenderAddress(id: $id) }"
LIST = """query($filter: SenderAddressFilter, $first: Int, $after: String) {
    senderAddresses(filter: $filter, first: $first, after: $after) {
        totalCount edges { node { id address alias domain { name } } }
        pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def koomsg_env(dns_server: LocalDnsServer) -> dict[str, str]:
    return {"KOOMSG_DNS_NAMESERVERS": dns_server.address, "KOOMSG_DNS_TIMEOUT": "1"}


async def verified_domain(
    api: Api, dns_server: LocalDnsServer, name: str = "example.com", **kw: Any
) -> str:
    domain = (await api(CREATE_DOMAIN, {"name": name}, **kw)).ok()["createSenderDomain"]
    dns_server.set_zone(zone_for(domain["records"]))
    status = (await api(VERIFY, {"id": domain["id"]}, **kw)).ok()["verifySenderDomain"]["status"]
    assert status == "VERIFICATION_PASSED"
    return str(domain["id"])


def address_input(domain_id: str, prefix: str = "info", alias: str | None = None) -> dict[str, Any]:
    return {"input": {"domainId": domain_id, "prefix": prefix, "alias": alias}}


async def test_create_list_and_delete(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer
) -> None:
    domain_id = await verified_domain(api, dns_server)
    made = (await api(CREATE, address_input(domain_id, "Info.Desk", "Acme Support ✉"))).ok()[
        "createSenderAddress"
    ]
    assert made["id"].startswith("adr_")
    assert (made["prefix"], made["alias"], made["address"]) == (
        "Info.Desk", "Acme Support ✉", "Info.Desk@example.com",
    )  # fmt: skip
    assert made["domain"] == {
        "id": domain_id,
        "name": "example.com",
        "status": "VERIFICATION_PASSED",
    }
    listed = (await api(LIST)).ok()["senderAddresses"]
    assert [e["node"]["id"] for e in listed["edges"]] == [made["id"]]
    assert (await api(DELETE, {"id": made["id"]})).ok()["deleteSenderAddress"] == made["id"]
    assert (await api(LIST)).ok()["senderAddresses"]["totalCount"] == 0
    (await api(DELETE, {"id": made["id"]})).error("NOT_FOUND", "id")


async def test_unverified_domain_is_refused(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    domain = (await api(CREATE_DOMAIN, {"name": "example.com"})).ok()["createSenderDomain"]
    refused = (await api(CREATE, address_input(domain["id"]))).error(
        "PRECONDITION_FAILED", "domainId"
    )
    assert "has not passed verification" in refused["message"]
    assert await count_rows(runtime, "sender_address") == 0


@pytest.mark.parametrize(
    ("prefix", "alias", "field"),
    [
        ("", None, "prefix"),
        ("x" * 65, None, "prefix"),  # email-validator 2.4 would take it
        ("a..b", None, "prefix"),
        (".info", None, "prefix"),
        ('"quoted"', None, "prefix"),
        ("in fo", None, "prefix"),
        ("info@evil.test", None, "prefix"),
        ("ünï", None, "prefix"),
        ("info", "Support\r\nBcc: victim@example.org", "alias"),
        ("info", "Support\nX", "alias"),
        ("info", "Support\x00", "alias"),
        ("info", "Support\u2028X", "alias"),
        ("info", "=?utf-8?q?Hi=0D=0ABcc:_x?=", "alias"),
        ("info", "a" * 65, "alias"),
    ],
)
async def test_bad_prefixes_and_aliases_write_nothing(
    api: Api,
    enterprise: EnterpriseHandle,
    dns_server: LocalDnsServer,
    runtime: Runtime,
    prefix: str,
    alias: str | None,
    field: str,
) -> None:
    domain_id = await verified_domain(api, dns_server)
    (await api(CREATE, address_input(domain_id, prefix, alias))).error("BAD_USER_INPUT", field)
    assert await count_rows(runtime, "sender_address") == 0


async def test_limits_are_inclusive(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer
) -> None:
    domain_id = await verified_domain(api, dns_server)
    made = (await api(CREATE, address_input(domain_id, "x" * 64, "ä" * 64))).ok()[
        "createSenderAddress"
    ]
    assert made["address"] == "x" * 64 + "@example.com"
    blank = (await api(CREATE, address_input(domain_id, "no-alias", "  "))).ok()[
        "createSenderAddress"
    ]
    assert blank["alias"] is None


async def test_the_same_address_twice_is_a_conflict(
    api: Api,
    enterprise: EnterpriseHandle,
    dns_server: LocalDnsServer,
    runtime: Runtime,
    make_enterprise: Any,
) -> None:
    domain_id = await verified_domain(api, dns_server)
    (await api(CREATE, address_input(domain_id, "info"))).ok()
    (await api(CREATE, address_input(domain_id, "INFO", "Other alias"))).error("CONFLICT", "prefix")
    assert await count_rows(runtime, "sender_address") == 1
    # Another enterprise may verify and use the same domain name and prefix.
    other = await make_enterprise("Other")
    other_domain = await verified_domain(api, dns_server, key=other.key)
    (await api(CREATE, address_input(other_domain, "info"), key=other.key)).ok()


async def test_another_enterprises_objects_are_not_found(
    api: Api,
    enterprise: EnterpriseHandle,
    dns_server: LocalDnsServer,
    make_enterprise: Any,
    runtime: Runtime,
) -> None:
    domain_id = await verified_domain(api, dns_server)
    made = (await api(CREATE, address_input(domain_id))).ok()["createSenderAddress"]
    other = await make_enterprise("Other")
    (await api(CREATE, address_input(domain_id, "x"), key=other.key)).error("NOT_FOUND", "domainId")
    (await api(DELETE, {"id": made["id"]}, key=other.key)).error("NOT_FOUND", "id")
    node = "query($id: ID!) { node(id: $id) { id ... on SenderAddress { address } } }"
    (await api(node, {"id": made["id"]}, key=other.key)).error("NOT_FOUND")
    assert (await api(node, {"id": made["id"]})).ok()["node"]["address"] == "info@example.com"
    assert (await api(LIST, key=other.key)).ok()["senderAddresses"]["totalCount"] == 0
    assert await count_rows(runtime, "sender_address") == 1


async def test_pages_and_address_filter(
    api: Api, enterprise: EnterpriseHandle, dns_server: LocalDnsServer
) -> None:
    first_domain = await verified_domain(api, dns_server, "example.com")
    second_domain = await verified_domain(api, dns_server, "shop.example.net")
    made = []
    for domain_id, prefix in [
        (first_domain, "a"),
        (first_domain, "b"),
        (second_domain, "a"),
        (second_domain, "c"),
    ]:
        made.append(
            (await api(CREATE, address_input(domain_id, prefix))).ok()["createSenderAddress"]["id"]
        )
    page = (await api(LIST, {"first": 3})).ok()["senderAddresses"]
    assert [e["node"]["id"] for e in page["edges"]] == made[:0:-1]
    assert page["totalCount"] == 4 and page["pageInfo"]["hasNextPage"]
    rest = (await api(LIST, {"first": 3, "after": page["pageInfo"]["endCursor"]})).ok()[
        "senderAddresses"
    ]
    assert [e["node"]["id"] for e in rest["edges"]] == made[:1]

    by_address = (await api(LIST, {"filter": {"address": "A@Shop"}})).ok()["senderAddresses"]
    assert [e["node"]["address"] for e in by_address["edges"]] == ["a@shop.example.net"]
    by_domain = (await api(LIST, {"filter": {"address": "@example.com"}})).ok()["senderAddresses"]
    assert by_domain["totalCount"] == 2
    assert {e["node"]["domain"]["name"] for e in by_domain["edges"]} == {"example.com"}
    nothing = (await api(LIST, {"filter": {"address": "%"}})).ok()["senderAddresses"]
    assert nothing["totalCount"] == 0
