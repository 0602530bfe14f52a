"""Hourly aggregates: rollup, reports across boundaries and time zones, purging."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.ids import _encode
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.stats.models import HourlyStat
from koomsg.core.stats.report import ReportType
from koomsg.core.stats.rollup import purge, rollup
from koomsg.core.stats.service import statistics_report
from koomsg.core.tenancy.models import Enterprise
from koomsg.runtime import Runtime

MESSAGE = Message.__table__  # type: ignore[attr-defined]


def id_at(moment: datetime) -> str:
    ms = int(moment.timestamp() * 1000)
    return f"msg_{_encode((ms << 80) | secrets.randbits(80))}"


def message_row(
    enterprise_id: str, created: datetime, status: MessageStatus, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id_at(created),
        "enterprise_id": enterprise_id,
        "task_id": None,
        "send_method": "API",
        "template_id": extra.pop("template_id", "tpl_1"),
        "template_name": "T",
        "sender_address_id": extra.pop("sender_address_id", "adr_1"),
        "sender": "a@example.com",
        "recipient": "b@example.com",
        "subject": "s",
        "status": str(status),
        "attempts": 1,
        "created_at": created,
        "open_count": 0,
        "click_count": 0,
        "first_opened_at": None,
        "changed_at": None,
        **extra,
    }


async def make_enterprise(runtime: Runtime, name: str = "Acme") -> Principal:
    async with runtime.db.transaction() as session:
        row = Enterprise(name=name, real_name_verified=True, service_enabled=True)
        session.add(row)
        await session.flush()
    return Principal(PrincipalKind.ENTERPRISE_ROOT, name, "key", enterprise_id=row.id)


async def insert_messages(runtime: Runtime, rows: list[dict[str, Any]]) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(insert(MESSAGE), rows)


async def run_rollup(runtime: Runtime, **options: Any) -> int:
    async with runtime.db.transaction() as session:
        return await rollup(session, **options)


async def report(
    runtime: Runtime,
    principal: Principal,
    kind: ReportType,
    start: datetime,
    end: datetime,
    **kw: Any,
) -> list[Any]:
    async with runtime.db.session() as session:
        return await statistics_report(
            session, principal=principal, report_type=kind, start=start, end=end, **kw
        )


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def test_rows_for_hours_days_and_months_across_a_month_end_and_time_zones(
    runtime: Runtime,
) -> None:
    principal = await make_enterprise(runtime)
    ent = principal.enterprise_id
    assert ent is not None
    S = MessageStatus
    await insert_messages(
        runtime,
        [
            message_row(
                ent, at(2024, 7, 31, 15, 30), S.DELIVERED, first_opened_at=at(2024, 7, 31, 16)
            ),
            message_row(ent, at(2024, 7, 31, 15, 40), S.FAILED),
            message_row(ent, at(2024, 7, 31, 16, 30), S.DELIVERED),  # 00:30 on 1 August in Shanghai
            message_row(ent, at(2024, 8, 1, 1, 0), S.REJECTED),
            message_row(ent, at(2024, 8, 1, 1, 5), S.TO_SEND),
            message_row(ent, at(2024, 8, 1, 1, 6), S.SENDING),
        ],
    )
    await run_rollup(runtime)
    hourly = await report(
        runtime, principal, ReportType.HOURLY, at(2024, 7, 31, 15), at(2024, 8, 1, 2)
    )
    assert [r.time for r in hourly] == [at(2024, 7, 31, 15) + timedelta(hours=i) for i in range(11)]
    first = hourly[0]
    assert (first.sent, first.successful, first.failed, first.delivery_rate, first.opens) == (
        2,
        1,
        1,
        0.5,
        1,
    )
    assert (hourly[-1].rejected, hourly[-1].to_send, hourly[-1].sent, hourly[-1].delivery_rate) == (
        1,
        2,
        0,
        0.0,
    )
    assert sum(r.sent for r in hourly[1:-1]) == 1

    daily = await report(runtime, principal, ReportType.DAILY, at(2024, 7, 31), at(2024, 8, 2))
    assert [(r.time, r.sent, r.rejected, r.to_send) for r in daily] == [
        (at(2024, 7, 31), 3, 0, 0),
        (at(2024, 8, 1), 0, 1, 2),
    ]
    shanghai = await report(
        runtime,
        principal,
        ReportType.DAILY,
        at(2024, 7, 30, 16),
        at(2024, 8, 1, 16),
        timezone="Asia/Shanghai",
    )
    assert [(r.time, r.sent, r.rejected) for r in shanghai] == [
        (at(2024, 7, 30, 16), 2, 0),  # 31 July in Shanghai starts at 16:00 UTC the day before
        (at(2024, 7, 31, 16), 1, 1),
    ]
    monthly = await report(runtime, principal, ReportType.MONTHLY, at(2024, 7, 1), at(2024, 9, 1))
    assert [(r.time, r.sent, r.successful) for r in monthly] == [
        (at(2024, 7, 1), 3, 2),
        (at(2024, 8, 1), 0, 0),
    ]
    monthly_sh = await report(
        runtime,
        principal,
        ReportType.MONTHLY,
        at(2024, 6, 30, 16),
        at(2024, 8, 31, 16),
        timezone="Asia/Shanghai",
    )
    assert [(r.time, r.sent) for r in monthly_sh] == [
        (at(2024, 6, 30, 16), 2),
        (at(2024, 7, 31, 16), 1),
    ]


async def test_filters_and_tenancy(runtime: Runtime) -> None:
    principal = await make_enterprise(runtime)
    other = await make_enterprise(runtime, "Other")
    ent = principal.enterprise_id
    assert ent is not None and other.enterprise_id is not None
    now = at(2024, 5, 1, 10)
    await insert_messages(
        runtime,
        [
            message_row(ent, now, MessageStatus.DELIVERED, template_id="tpl_a"),
            message_row(
                ent, now, MessageStatus.DELIVERED, template_id="tpl_b", sender_address_id="adr_2"
            ),
            message_row(other.enterprise_id, now, MessageStatus.DELIVERED),
        ],
    )
    await run_rollup(runtime)
    span = (now, now + timedelta(hours=1))
    assert [r.sent for r in await report(runtime, principal, ReportType.HOURLY, *span)] == [2]
    assert [
        r.sent
        for r in await report(runtime, principal, ReportType.HOURLY, *span, template_id="tpl_a")
    ] == [1]
    assert [
        r.sent
        for r in await report(
            runtime, principal, ReportType.HOURLY, *span, sender_address_id="adr_2"
        )
    ] == [1]
    assert [
        r.sent for r in await report(runtime, principal, ReportType.HOURLY, *span, task_id="tsk_x")
    ] == [0]


async def test_concurrent_changes_and_rollups_add_up_to_the_messages(runtime: Runtime) -> None:
    principal = await make_enterprise(runtime)
    ent = principal.enterprise_id
    assert ent is not None
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    rng = random.Random(7)
    rows = [
        message_row(ent, base + timedelta(minutes=rng.randrange(6 * 60)), MessageStatus.TO_SEND)
        for _ in range(600)
    ]
    await insert_messages(runtime, rows)
    await run_rollup(runtime)
    ids = [r["id"] for r in rows]
    finals = [
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.REJECTED,
        MessageStatus.SENDING,
    ]

    async def worker(part: list[str]) -> None:
        for start in range(0, len(part), 20):
            async with runtime.db.transaction() as session:
                for message_id in part[start : start + 20]:
                    await session.execute(
                        update(MESSAGE)
                        .where(MESSAGE.c.id == message_id)
                        .values(status=str(rng.choice(finals)), changed_at=datetime.now(UTC))
                    )
            await asyncio.sleep(0)

    async def roller() -> None:
        for _ in range(8):
            await run_rollup(runtime)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(worker(ids[i::4]) for i in range(4)), roller(), roller())
    await run_rollup(runtime)
    async with runtime.db.session() as session:
        truth = dict(
            (
                await session.execute(
                    select(MESSAGE.c.status, func.count()).group_by(MESSAGE.c.status)
                )
            ).all()
        )
    rows_ = await report(
        runtime, principal, ReportType.DAILY, base - timedelta(days=1), base + timedelta(days=1)
    )
    assert sum(r.successful for r in rows_) == truth.get("DELIVERED", 0)
    assert sum(r.failed for r in rows_) == truth.get("FAILED", 0)
    assert sum(r.rejected for r in rows_) == truth.get("REJECTED", 0)
    assert sum(r.to_send for r in rows_) == truth.get("SENDING", 0) + truth.get("TO_SEND", 0)
    assert sum(r.sent + r.rejected + r.to_send for r in rows_) == 600


async def test_a_rollup_recomputes_only_dirty_hours_and_never_double_counts(
    runtime: Runtime,
) -> None:
    principal = await make_enterprise(runtime)
    ent = principal.enterprise_id
    assert ent is not None
    old = at(2024, 3, 1, 8, 15)
    await insert_messages(runtime, [message_row(ent, old, MessageStatus.DELIVERED)])
    assert await run_rollup(runtime) == 1
    assert await run_rollup(runtime) == 0  # nothing new
    await insert_messages(runtime, [message_row(ent, datetime.now(UTC), MessageStatus.TO_SEND)])
    assert await run_rollup(runtime) == 1
    # A late open of the old message dirties its hour again, counted once.
    async with runtime.db.transaction() as session:
        await session.execute(
            update(MESSAGE)
            .where(MESSAGE.c.created_at == old)
            .values(first_opened_at=datetime.now(UTC), changed_at=datetime.now(UTC))
        )
    assert await run_rollup(runtime) >= 1
    rows = await report(runtime, principal, ReportType.HOURLY, old, old + timedelta(minutes=10))
    assert [(r.time, r.sent, r.opens) for r in rows] == [(at(2024, 3, 1, 8), 1, 1)]


async def test_purge_deletes_aggregates_and_messages_past_retention(runtime: Runtime) -> None:
    principal = await make_enterprise(runtime)
    ent = principal.enterprise_id
    assert ent is not None
    now = datetime.now(UTC)
    old = (now - timedelta(days=400)).replace(minute=10)  # five messages in one hour
    await insert_messages(
        runtime,
        [message_row(ent, old + timedelta(minutes=i), MessageStatus.DELIVERED) for i in range(5)]
        + [message_row(ent, now - timedelta(days=3), MessageStatus.DELIVERED)],
    )
    await run_rollup(runtime)
    before = now - timedelta(days=366)
    async with runtime.db.transaction() as session:
        stats, messages = await purge(session, before=before, chunk=3)
    assert (stats, messages) == (1, 3)
    async with runtime.db.transaction() as session:
        assert await purge(session, before=before, chunk=3) == (0, 2)
    async with runtime.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(MESSAGE))).scalar_one() == 1
        hours = (await session.execute(select(HourlyStat.hour))).scalars().all()  # type: ignore[call-overload]
    assert len(hours) == 1 and hours[0] > before


@pytest.mark.parametrize("days", [367, 0])
async def test_ranges_over_a_year_or_empty_are_refused(runtime: Runtime, days: int) -> None:
    from koomsg.core.errors import BadInput

    principal = await make_enterprise(runtime)
    start = at(2024, 1, 1)
    with pytest.raises(BadInput) as caught:
        await report(runtime, principal, ReportType.DAILY, start, start + timedelta(days=days))
    assert caught.value.field == "to"
