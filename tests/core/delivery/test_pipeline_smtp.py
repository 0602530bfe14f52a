"""The pipeline over real SMTP on loopback: per-recipient outcomes, retries, giving up, bounces."""

from __future__ import annotations

import asyncio

import dkim
import pytest
from sqlmodel import select

from koomsg.core.delivery.models import MessageStatus
from koomsg.core.domains.dkim import txt_value
from koomsg.core.domains.models import DkimKey
from koomsg.core.recipients.models import Suppression, SuppressionReason
from koomsg.core.tasks.models import TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, later, make_task, statuses, task_status
from koomsg.testing.plugin import Api, EnterpriseHandle, SendableSetup, sendable_setup
from koomsg.testing.smtp import ScriptedSMTPServer


@pytest.fixture
def koomsg_env(smtp_server: ScriptedSMTPServer) -> dict[str, str]:
    # smtp_server (from koomsg.testing) is a fresh loopback server per test.
    return {
        "KOOMSG_TRANSPORT": "smtp",
        "KOOMSG_SMTP_URL": smtp_server.url,
        "KOOMSG_SMTP_TIMEOUT": "2",
        "KOOMSG_RETRY_MIN_SECONDS": "0.2",
        "KOOMSG_RETRY_MAX_SECONDS": "0.4",
        "KOOMSG_RETRY_MAX_AGE_SECONDS": "3",
    }


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime)


async def test_per_recipient_outcomes_retry_and_suppression(
    runtime: Runtime,
    setup: SendableSetup,
    enterprise: EnterpriseHandle,
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.handler.replies.update(
        {
            "later@example.net": "451 4.3.0 try again later",
            "nobody@example.net": "550 5.1.1 <nobody@example.net>: user unknown",
        }
    )
    task = await make_task(
        runtime, setup, enterprise.id, ["ok@example.net", "later@example.net", "nobody@example.net"]
    )
    await drain(runtime)
    rows = await statuses(runtime, task.id)
    assert rows["ok@example.net"].status == MessageStatus.DELIVERED
    assert rows["nobody@example.net"].status == MessageStatus.FAILED
    assert "550 5.1.1" in (rows["nobody@example.net"].failure_reason or "")
    later_row = rows["later@example.net"]
    assert later_row.status == MessageStatus.TO_SEND and later_row.attempts == 1
    assert await task_status(runtime, task.id) is TaskStatus.SENDING
    async with runtime.db.session() as session:
        entry = (
            await session.exec(
                select(Suppression).where(Suppression.address == "nobody@example.net")
            )
        ).one()
    assert entry.reason == SuppressionReason.HARD_BOUNCE

    # The backoff has not passed: nothing is retried yet; then the server accepts.
    await drain(runtime)
    assert (await statuses(runtime, task.id))["later@example.net"].attempts == 1
    del smtp_server.handler.replies["later@example.net"]
    await asyncio.sleep(0.25)
    await drain(runtime)
    rows = await statuses(runtime, task.id)
    assert (
        rows["later@example.net"].status == MessageStatus.DELIVERED
        and rows["later@example.net"].attempts == 2
    )
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED
    delivered = [m.rcpt_tos for m in smtp_server.messages]
    assert (
        delivered.count(("ok@example.net",)) == 1 and delivered.count(("later@example.net",)) == 1
    )

    # Every message the sink got verifies with the domain's published key.
    async with runtime.db.session() as session:
        key = (
            await session.exec(select(DkimKey).where(DkimKey.domain_id == setup.domain_id))
        ).one()
    record = txt_value(key.public_key).encode()
    for received in smtp_server.messages:
        assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: record)

    # The hard-bounced address is suppressed for the next task.
    again = await make_task(runtime, setup, enterprise.id, ["nobody@example.net"])
    await drain(runtime)
    assert (await statuses(runtime, again.id))[
        "nobody@example.net"
    ].status == MessageStatus.REJECTED


async def test_gives_up_after_the_maximum_age(
    runtime: Runtime,
    setup: SendableSetup,
    enterprise: EnterpriseHandle,
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.handler.replies["stuck@example.net"] = "452 4.2.2 mailbox full"
    task = await make_task(runtime, setup, enterprise.id, ["stuck@example.net"])
    for _ in range(40):
        await drain(runtime)
        row = (await statuses(runtime, task.id))["stuck@example.net"]
        if row.status == MessageStatus.FAILED:
            break
        await asyncio.sleep(0.2)
    assert row.status == MessageStatus.FAILED
    assert row.failure_reason is not None and row.failure_reason.startswith(
        f"gave up after {row.attempts} attempts"
    )
    assert row.attempts >= 3
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED


async def test_a_server_that_hangs_after_data_is_retried(
    runtime: Runtime,
    setup: SendableSetup,
    enterprise: EnterpriseHandle,
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.handler.hang_after_data = True
    task = await make_task(runtime, setup, enterprise.id, ["slow@example.net"])
    await drain(runtime)
    row = (await statuses(runtime, task.id))["slow@example.net"]
    assert row.status == MessageStatus.TO_SEND and row.attempts == 1
    smtp_server.handler.hang_after_data = False
    await drain(runtime, now=later(1))
    assert (await statuses(runtime, task.id))["slow@example.net"].status == MessageStatus.DELIVERED


async def test_421_mid_session_retries_only_what_was_cut_off(
    runtime: Runtime,
    setup: SendableSetup,
    enterprise: EnterpriseHandle,
    smtp_server: ScriptedSMTPServer,
) -> None:
    smtp_server.handler.close_after = 3
    recipients = [f"r{i}@example.net" for i in range(8)]
    task = await make_task(runtime, setup, enterprise.id, recipients)
    for _ in range(5):
        await drain(runtime, now=later(1))
        if await task_status(runtime, task.id) is TaskStatus.COMPLETED:
            break
    rows = await statuses(runtime, task.id)
    assert {r.status for r in rows.values()} == {MessageStatus.DELIVERED}
    received = [m.rcpt_tos[0] for m in smtp_server.messages]
    assert sorted(received) == sorted(recipients), "each message reached the sink exactly once"
