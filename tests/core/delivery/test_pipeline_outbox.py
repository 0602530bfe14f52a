"""The pipeline with the embedded default transport: outbox files, DKIM, tracking, crashes."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import dkim
import httpx
import pytest
from sqlmodel import select

from koomsg.core.delivery.batch import _claim, deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import MessageStatus
from koomsg.core.delivery.sweep import sweep
from koomsg.core.domains.dkim import txt_value
from koomsg.core.domains.models import DkimKey
from koomsg.core.recipients.models import Suppression, SuppressionReason
from koomsg.core.tasks.models import TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, later, make_task, statuses, task_status
from koomsg.testing.plugin import (
    Api,
    EnterpriseHandle,
    SendableSetup,
    sendable_setup,
    suppress_address,
)


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime)


async def dkim_dns(runtime: Runtime, setup: SendableSetup):  # type: ignore[no-untyped-def]
    async with runtime.db.session() as session:
        key = (
            await session.exec(select(DkimKey).where(DkimKey.domain_id == setup.domain_id))
        ).one()
    record = txt_value(key.public_key).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name.decode().startswith(f"{key.selector}._domainkey.")
        return record

    return dnsfunc


def outbox(runtime: Runtime) -> dict[str, bytes]:
    directory = Path(runtime.settings.outbox_dir)
    return (
        {path.stem: path.read_bytes() for path in directory.glob("*.eml")}
        if directory.exists()
        else {}
    )


async def test_a_task_is_delivered_signed_and_completed(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    task = await make_task(runtime, setup, enterprise.id, [f"r{i}@example.net" for i in range(5)])
    assert await task_status(runtime, task.id) is TaskStatus.SENDING
    await drain(runtime)
    rows = await statuses(runtime, task.id)
    assert {row.status for row in rows.values()} == {MessageStatus.DELIVERED}
    assert all(row.received_at is not None for row in rows.values())
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED
    files = outbox(runtime)
    assert set(files) == {row.id for row in rows.values()}
    dnsfunc = await dkim_dns(runtime, setup)
    for message_id, data in files.items():
        assert dkim.verify(data, dnsfunc=dnsfunc), message_id
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed["Message-ID"] == f"<{message_id}@{setup.sender.split('@')[1]}>"
        assert parsed["From"].addresses[0].display_name == "News Desk"
        assert parsed["Feedback-ID"].startswith(task.id)
        html = parsed.get_body(("html",)).get_content()
        assert "Hello user" in html and "/t/o/" in html
        assert "https://example.com/offer" not in html, "links go through the click endpoint"


async def test_task_is_not_completed_while_a_message_is_pending(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    task = await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches
    await deliver_batch(runtime.delivery, token=token, message_ids=ids[:1])
    assert await task_status(runtime, task.id) is TaskStatus.SENDING
    await sweep(runtime.delivery)
    assert await task_status(runtime, task.id) is TaskStatus.SENDING
    await deliver_batch(runtime.delivery, token=token, message_ids=ids[1:])
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED


async def test_a_batch_run_twice_sends_once(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches
    first = await deliver_batch(runtime.delivery, token=token, message_ids=ids)
    second = await deliver_batch(runtime.delivery, token=token, message_ids=ids)
    assert first.claimed == 2 and second.claimed == 0
    assert len(outbox(runtime)) == 2


async def test_a_lost_broker_message_is_dispatched_again(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    task = await make_task(runtime, setup, enterprise.id, ["a@example.net"])
    lost: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: lost.append((token, ids)))
    # Nothing more is due until the redispatch time has passed.
    await drain(runtime)
    assert outbox(runtime) == {}
    await drain(runtime, now=later(runtime.settings.redispatch_seconds + 1))
    assert (await statuses(runtime, task.id))["a@example.net"].status == MessageStatus.DELIVERED
    # The lost message turning up late claims nothing: its token is stale.
    [(token, ids)] = lost
    assert (await deliver_batch(runtime.delivery, token=token, message_ids=ids)).claimed == 0
    assert len(outbox(runtime)) == 1


async def test_a_killed_worker_s_rows_are_released_after_the_lease(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    task = await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches
    from koomsg.core.clock import utcnow

    async with runtime.db.transaction() as session:  # the worker claims, then dies
        assert len(await _claim(session, runtime.delivery, token, ids, utcnow())) == 2
    assert {r.status for r in (await statuses(runtime, task.id)).values()} == {
        MessageStatus.SENDING
    }
    assert (await sweep(runtime.delivery))["released"] == 0
    released = await sweep(runtime.delivery, now=later(runtime.settings.lease_seconds + 1))
    assert released["released"] == 2
    await drain(runtime, now=later(runtime.settings.lease_seconds + 2))
    assert {r.status for r in (await statuses(runtime, task.id)).values()} == {
        MessageStatus.DELIVERED
    }
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED


async def test_suppressed_recipients_are_rejected_and_never_sent(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    await suppress_address(runtime, enterprise.id, "gone@example.net", "MANUAL")
    task = await make_task(runtime, setup, enterprise.id, ["Gone@example.net", "ok@example.net"])
    await drain(runtime)
    rows = await statuses(runtime, task.id)
    assert rows["Gone@example.net"].status == MessageStatus.REJECTED
    assert "suppression" in (rows["Gone@example.net"].failure_reason or "")
    assert set(outbox(runtime)) == {rows["ok@example.net"].id}
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED


async def test_a_domain_that_lost_verification_stops_sending(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle
) -> None:
    from sqlalchemy import update

    from koomsg.core.domains.models import DomainStatus, SenderDomain

    task = await make_task(runtime, setup, enterprise.id, ["a@example.net"])
    async with runtime.db.transaction() as session:
        await session.execute(
            update(SenderDomain)
            .where(SenderDomain.id == setup.domain_id)
            .values(status=DomainStatus.VERIFICATION_FAILED)  # type: ignore[arg-type]
        )
    await drain(runtime)
    row = (await statuses(runtime, task.id))["a@example.net"]
    assert row.status == MessageStatus.REJECTED and "verification" in (row.failure_reason or "")
    assert outbox(runtime) == {}


async def test_tracking_links_and_one_click_unsubscribe(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle, http: httpx.AsyncClient
) -> None:
    task = await make_task(
        runtime, setup, enterprise.id, ["reader@example.net"], support_unsubscribe=True
    )
    await drain(runtime)
    [data] = outbox(runtime).values()
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.search(r"<(http[^>]+/u/[^>]+)>", parsed["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()
    click = re.search(r'href="(http[^"]+/t/c/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    pixel = re.search(r'src="(http[^"]+/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    path = lambda url: url.split("://", 1)[1].split("/", 1)[1]  # noqa: E731

    for _ in range(2):
        opened = await http.get("/" + path(pixel))
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        clicked = await http.get("/" + path(click))
        assert clicked.status_code == 302
        assert clicked.headers["location"] == "https://example.com/offer?a=1&b=2"
    row = (await statuses(runtime, task.id))["reader@example.net"]
    assert (row.open_count, row.click_count) == (2, 2)
    assert row.first_opened_at is not None and row.first_clicked_at is not None

    # Forged or altered tokens are refused; the endpoint is no open redirect.
    token = path(click).split("/")[-1]
    assert (await http.get(f"/t/c/{token[:-2]}xx")).status_code == 404
    assert (
        await http.get("/t/c/eyJtIjoibXNnXzEiLCJ1IjoiaHR0cHM6Ly9ldmlsLmV4YW1wbGUifQ.AAAA")
    ).status_code == 404
    assert (await http.get("/t/o/nope")).status_code == 404

    page = await http.get("/" + path(unsubscribe))
    assert page.status_code == 200 and "<form" in page.text
    done = await http.post(
        "/" + path(unsubscribe),
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    async with runtime.db.session() as session:
        entry = (
            await session.exec(
                select(Suppression).where(Suppression.address == "reader@example.net")
            )
        ).one()
    assert entry.reason == SuppressionReason.UNSUBSCRIBED

    again = await make_task(runtime, setup, enterprise.id, ["reader@example.net"])
    await drain(runtime)
    assert (await statuses(runtime, again.id))[
        "reader@example.net"
    ].status == MessageStatus.REJECTED
    assert len(outbox(runtime)) == 1


async def test_observers_get_status_and_tracking_events_off_the_send_path(
    runtime: Runtime, setup: SendableSetup, enterprise: EnterpriseHandle, http: httpx.AsyncClient
) -> None:
    import asyncio

    from koomsg.plugins import hookimpl
    from koomsg.plugins.types import MessageEvent

    seen: list[MessageEvent] = []

    class Observer:
        @hookimpl
        async def koomsg_message_event(self, event: MessageEvent) -> None:
            seen.append(event)

    class Broken:
        @hookimpl
        def koomsg_message_event(self, event: MessageEvent) -> None:
            raise RuntimeError("an observer that fails must not affect delivery")

    observer, broken = Observer(), Broken()
    runtime.plugins.register(observer)
    runtime.plugins.register(broken)
    try:
        task = await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
        await drain(runtime)
        rows = await statuses(runtime, task.id)
        assert {r.status for r in rows.values()} == {MessageStatus.DELIVERED}
        data = outbox(runtime)[rows["a@example.net"].id]
        pixel = re.search(
            rb'src="http[^"]+(/t/o/[^"]+)"', data.replace(b"=\r\n", b"").replace(b"=3D", b"=")
        )
        assert pixel is not None
        assert (await http.get(pixel.group(1).decode())).status_code == 200
        for _ in range(50):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        runtime.plugins.unregister(observer)
        runtime.plugins.unregister(broken)
    kinds = sorted((e.kind, e.status, e.message_id) for e in seen)
    assert ("status", "DELIVERED", rows["a@example.net"].id) in kinds
    assert ("status", "DELIVERED", rows["b@example.net"].id) in kinds
    assert any(e.kind == "open" and e.message_id == rows["a@example.net"].id for e in seen)
    assert all(e.task_id == task.id and e.enterprise_id == enterprise.id for e in seen)
