"""Package offers, the price calculator, purchases, the overview and the cap, over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from koomsg.testing.plugin import Api, EnterpriseHandle

CREATE = """
mutation($name: String!, $mode: BillingMode!, $quota: Int!, $price: Int!, $currency: String!) {
  createPackageOffer(
    name: $name, mode: $mode, emailQuota: $quota, priceCents: $price, currency: $currency
  ) {
    id name mode emailQuota priceCents currency
  }
}"""
OFFERS = "{ packageOffers { id name } }"
QUOTE = """query($id: ID!, $q: Int!) {
  priceQuote(offerId: $id, quantity: $q) { quantity totalCents currency offer { id } }
}"""
PURCHASE = """mutation($id: ID!, $q: Int!) {
  purchasePackage(offerId: $id, quantity: $q) {
    id emailQuota emailsUsed emailsLeft purchasedAt expiresAt offer { id mode }
  }
}"""
OVERVIEW = """{ overview { emailsLeft payPerUseEmailsThisMonth payPerUseCap
  packages { id emailsLeft expiresAt } } }"""
RETIRE = "mutation($id: ID!) { retirePackageOffer(id: $id) { id retired } }"
CAP = "mutation($cap: Int) { setPayPerUseCap(cap: $cap) { id } }"


async def offer(
    api: Api, mode: str = "MONTHLY", quota: int = 1000, **overrides: Any
) -> dict[str, Any]:
    variables = {
        "name": f"{mode} {quota}",
        "mode": mode,
        "quota": quota,
        "price": 990,
        "currency": "CNY",
    }
    variables.update(overrides)
    return (await api(CREATE, variables, key=api.keys["operator"])).ok()["createPackageOffer"]  # type: ignore[no-any-return]


async def test_operators_create_offers_that_enterprises_list_quote_and_buy(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    monthly = await offer(api)
    yearly = await offer(api, "YEARLY", 20000)
    pack = await offer(api, "PAY_PER_USE", 500, price=0)
    assert monthly["mode"] == "MONTHLY" and monthly["currency"] == "CNY"
    listed = (await api(OFFERS)).ok()["packageOffers"]
    assert {o["id"] for o in listed} == {monthly["id"], yearly["id"], pack["id"]}

    quote = (await api(QUOTE, {"id": monthly["id"], "q": 3})).ok()["priceQuote"]
    assert quote == {
        "quantity": 3,
        "totalCents": 2970,
        "currency": "CNY",
        "offer": {"id": monthly["id"]},
    }
    for bad in (0, 101):
        (await api(QUOTE, {"id": monthly["id"], "q": bad})).error("BAD_USER_INPUT", "quantity")

    bought = (await api(PURCHASE, {"id": monthly["id"], "q": 2})).ok()["purchasePackage"]
    assert len(bought) == 2 and all(p["emailsLeft"] == 1000 and p["expiresAt"] for p in bought)
    [packed] = (await api(PURCHASE, {"id": pack["id"], "q": 1})).ok()["purchasePackage"]
    assert packed["expiresAt"] is None
    (await api(PURCHASE, {"id": pack["id"], "q": 101})).error("BAD_USER_INPUT", "quantity")

    view = (await api(OVERVIEW)).ok()["overview"]
    assert view["emailsLeft"] == 2500 and view["payPerUseEmailsThisMonth"] == 0
    assert [p["id"] for p in view["packages"]][-1] == packed[
        "id"
    ]  # non-expiring packs are spent last


async def test_offer_input_is_checked(api: Api, enterprise: EnterpriseHandle) -> None:
    operator = api.keys["operator"]
    base = {"name": "X", "mode": "MONTHLY", "quota": 10, "price": 10, "currency": "CNY"}
    for field, change in (
        ("emailQuota", {"quota": 0}),
        ("priceCents", {"price": -1}),
        ("currency", {"currency": "cny"}),
        ("currency", {"currency": "YUAN"}),
    ):
        (await api(CREATE, {**base, **change}, key=operator)).error("BAD_USER_INPUT", field)
    # Enterprises cannot create offers.
    (await api(CREATE, base)).error("FORBIDDEN")


async def test_a_retired_offer_is_not_listed_or_sold(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    made = await offer(api)
    retired = (await api(RETIRE, {"id": made["id"]}, key=api.keys["operator"])).ok()[
        "retirePackageOffer"
    ]
    assert retired == {"id": made["id"], "retired": True}
    assert (await api(OFFERS)).ok()["packageOffers"] == []
    (await api(PURCHASE, {"id": made["id"], "q": 1})).error("PRECONDITION_FAILED")
    (await api(QUOTE, {"id": made["id"], "q": 1})).error("PRECONDITION_FAILED")
    (await api(PURCHASE, {"id": "pko_nope", "q": 1})).error("NOT_FOUND", "offerId")


async def test_the_pay_per_use_cap_is_set_and_shown(api: Api, enterprise: EnterpriseHandle) -> None:
    (await api(CAP, {"cap": 5000})).ok()
    assert (await api(OVERVIEW)).ok()["overview"]["payPerUseCap"] == 5000
    (await api(CAP, {"cap": -1})).error("BAD_USER_INPUT", "cap")
    (await api(CAP, {"cap": None})).ok()
    assert (await api(OVERVIEW)).ok()["overview"]["payPerUseCap"] is None


async def test_packages_belong_to_their_enterprise(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Any
) -> None:
    made = await offer(api)
    [package] = (await api(PURCHASE, {"id": made["id"], "q": 1})).ok()["purchasePackage"]
    other = await make_enterprise("Other")
    assert (await api(OVERVIEW, key=other.key)).ok()["overview"]["packages"] == []
    found = await api(
        "query($id: ID!) { node(id: $id) { id } }", {"id": package["id"]}, key=other.key
    )
    found.error("NOT_FOUND")
    assert (await api("query($id: ID!) { node(id: $id) { id } }", {"id": package["id"]})).ok()[
        "node"
    ]


KEYED_PURCHASE = """mutation($id: ID!, $q: Int!, $key: String) {
  purchasePackage(offerId: $id, quantity: $q, idempotencyKey: $key) { id }
}"""


async def test_a_purchase_retried_with_its_key_charges_once(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Any
) -> None:
    made = await offer(api, quota=100)
    variables = {"id": made["id"], "q": 2, "key": "order-42"}
    first = (await api(KEYED_PURCHASE, variables)).ok()["purchasePackage"]
    again = (await api(KEYED_PURCHASE, variables)).ok()["purchasePackage"]
    assert again == first and len(first) == 2
    assert (await api(OVERVIEW)).ok()["overview"]["emailsLeft"] == 200

    # The same key for another purchase is refused, and buys nothing.
    other_quantity = await api(KEYED_PURCHASE, {**variables, "q": 3})
    other_quantity.error("CONFLICT", "idempotencyKey")
    other_offer = await offer(api, "YEARLY", 100)
    (await api(KEYED_PURCHASE, {**variables, "id": other_offer["id"]})).error(
        "CONFLICT", "idempotencyKey"
    )
    assert (await api(OVERVIEW)).ok()["overview"]["emailsLeft"] == 200

    # Keys belong to one enterprise: another one's "order-42" is its own purchase.
    other = await make_enterprise("Other")
    theirs = (await api(KEYED_PURCHASE, variables, key=other.key)).ok()["purchasePackage"]
    assert {p["id"] for p in theirs}.isdisjoint(p["id"] for p in first)
    # No key: every call is a purchase of its own.
    plain = {"id": made["id"], "q": 1, "key": None}
    assert (await api(KEYED_PURCHASE, plain)).ok() != (await api(KEYED_PURCHASE, plain)).ok()
    assert (await api(OVERVIEW)).ok()["overview"]["emailsLeft"] == 400


async def test_concurrent_retries_of_one_purchase_buy_once(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    made = await offer(api, quota=10)
    variables = {"id": made["id"], "q": 1, "key": "double-click"}
    answers = await asyncio.gather(*(api(KEYED_PURCHASE, variables) for _ in range(5)))
    bought = {answer.ok()["purchasePackage"][0]["id"] for answer in answers}
    assert len(bought) == 1
    assert (await api(OVERVIEW)).ok()["overview"]["emailsLeft"] == 10


async def test_a_bad_idempotency_key_is_refused(api: Api, enterprise: EnterpriseHandle) -> None:
    made = await offer(api)
    for bad in ("", "   ", "k" * 256):
        answer = await api(KEYED_PURCHASE, {"id": made["id"], "q": 1, "key": bad})
        answer.error("BAD_USER_INPUT", "idempotencyKey")
    assert (await api(OVERVIEW)).ok()["overview"]["emailsLeft"] == 0
