"""Billing through the hooks, driven by the real delivery pipeline (deliver_batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from koomsg.core.billing.models import LedgerEntry
from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.ids import new_id
from koomsg.plugins import hookimpl
from koomsg.plugins.types import BillingReservation
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows, sendable_setup

MESSAGE = Message.__table__  # type: ignore[attr-defined]
TOKEN = "batch-token"


async def queue_messages(runtime: Runtime, enterprise_id: str, setup: Any, count: int) -> list[str]:
    rows = [
        {
            "id": new_id("msg"),
            "enterprise_id": enterprise_id,
            "send_method": "API",
            "template_id": setup.template_id,
            "template_name": "Welcome",
            "sender_address_id": setup.sender_address_id,
            "sender": setup.sender,
            "recipient": f"user{i}@example.net",
            "subject": "Hello",
            "status": "TO_SEND",
            "lease_token": TOKEN,
        }
        for i in range(count)
    ]
    async with runtime.db.transaction() as session:
        await session.execute(insert(MESSAGE), rows)
    return [r["id"] for r in rows]


async def statuses(runtime: Runtime, ids: list[str]) -> list[tuple[str, str | None]]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(MESSAGE.c.id, MESSAGE.c.status, MESSAGE.c.failure_reason).where(
                MESSAGE.c.id.in_(ids)
            )
        )
        found = {r.id: (r.status, r.failure_reason) for r in rows}
    return [found[i] for i in ids]


async def test_packages_then_the_cap_and_one_charge_per_message_across_retries(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    setup = await sendable_setup(api, runtime)
    offer = (
        await api(
            'mutation { createPackageOffer(name: "Pack", mode: PAY_PER_USE, emailQuota: 2, '
            'priceCents: 100, currency: "CNY") { id } }',
            key=api.keys["operator"],
        )
    ).ok()["createPackageOffer"]
    (
        await api(
            "mutation($id: ID!) { purchasePackage(offerId: $id) { id } }", {"id": offer["id"]}
        )
    ).ok()
    (await api("mutation { setPayPerUseCap(cap: 1) { id } }")).ok()
    ids = await queue_messages(runtime, enterprise.id, setup, 4)

    report = await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids)
    assert list(report.outcomes.values()).count(MessageStatus.DELIVERED) == 3
    assert (await statuses(runtime, ids))[3] == ("REJECTED", "quota exceeded")
    assert len(list(runtime.settings.outbox_dir.glob("**/*.eml"))) == 3
    view = (await api("{ overview { emailsLeft payPerUseEmailsThisMonth } }")).ok()["overview"]
    assert view == {"emailsLeft": 0, "payPerUseEmailsThisMonth": 1}

    # The same batch again (a retry after a lost acknowledgement): nothing is charged twice.
    async with runtime.db.transaction() as session:
        await session.execute(
            update(MESSAGE)
            .where(MESSAGE.c.id.in_(ids[:3]))
            .values(status="TO_SEND", lease_token=TOKEN)
        )
    again = await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids[:3])
    assert set(again.outcomes.values()) == {MessageStatus.DELIVERED}
    assert await count_rows(runtime, "billing_ledger") == 3
    assert await count_rows(runtime, "billing_reservation") == 2


class RefusingBilling:
    """A partner's external billing system that has run out of credit."""

    def __init__(self) -> None:
        self.settled: list[Sequence[Any]] = []

    @hookimpl
    def koomsg_billing_reserve(
        self, enterprise: Any, count: int, message_ids: Sequence[str], context: Any
    ) -> BillingReservation:
        return BillingReservation(
            allowed=False, reservation_id="ext-1", reason="prepaid credit exhausted at Acme Billing"
        )

    @hookimpl
    def koomsg_billing_settle(
        self, enterprise: Any, reservation: Any, outcomes: Any, context: Any
    ) -> bool:
        self.settled.append(outcomes)
        return True


async def test_a_partner_plugin_refusing_a_reservation_stops_the_batch(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    setup = await sendable_setup(api, runtime)
    partner = RefusingBilling()
    runtime.plugins.register(partner, name="partner-billing")
    ids = await queue_messages(runtime, enterprise.id, setup, 2)
    report = await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids)
    assert set(report.outcomes.values()) == {MessageStatus.REJECTED}
    assert (
        await statuses(runtime, ids)
        == [("REJECTED", "prepaid credit exhausted at Acme Billing")] * 2
    )
    assert [o.handed_to_transport for o in partner.settled[0]] == [False, False]
    assert not list((runtime.settings.outbox_dir).glob("**/*.eml"))
    async with runtime.db.session() as session:
        assert (await session.execute(select(LedgerEntry))).first() is None
    assert await count_rows(runtime, "billing_reservation") == 0


class ListedBilling(RefusingBilling):
    """A partner that answers "allowed" with an explicit list of message ids."""

    def __init__(self, allow: Any) -> None:
        super().__init__()
        self.allow = allow

    @hookimpl
    def koomsg_billing_reserve(  # type: ignore[override]
        self, enterprise: Any, count: int, message_ids: Sequence[str], context: Any
    ) -> BillingReservation:
        listed = self.allow(list(message_ids))
        if listed == "all":
            return BillingReservation.allow_all(reservation_id="ext-2")
        return BillingReservation(
            allowed=True, reservation_id="ext-2", reason="over budget", allowed_message_ids=listed
        )


async def test_an_empty_allow_list_sends_nothing_and_all_must_be_said(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    setup = await sendable_setup(api, runtime)
    empty = ListedBilling(lambda ids: [])
    runtime.plugins.register(empty, name="empty-list")
    ids = await queue_messages(runtime, enterprise.id, setup, 3)
    await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids)
    assert await statuses(runtime, ids) == [("REJECTED", "over budget")] * 3
    assert not list(runtime.settings.outbox_dir.glob("**/*.eml"))
    runtime.plugins.unregister(empty)

    some = ListedBilling(lambda ids: ids[:1])
    runtime.plugins.register(some, name="one-only")
    ids = await queue_messages(runtime, enterprise.id, setup, 3)
    await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids)
    assert [s for s, _ in await statuses(runtime, ids)] == ["DELIVERED", "REJECTED", "REJECTED"]
    runtime.plugins.unregister(some)

    everyone = ListedBilling(lambda ids: "all")
    runtime.plugins.register(everyone, name="explicit-all")
    ids = await queue_messages(runtime, enterprise.id, setup, 2)
    await deliver_batch(runtime.delivery, token=TOKEN, message_ids=ids)
    assert [s for s, _ in await statuses(runtime, ids)] == ["DELIVERED", "DELIVERED"]
