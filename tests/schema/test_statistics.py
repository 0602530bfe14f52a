"""statisticsReport over HTTP: rows from the hourly aggregates, time zones, limits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from koomsg.core.delivery.models import Message
from koomsg.core.ids import id_floor
from koomsg.core.stats.rollup import rollup
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle

REPORT = """
query($type: ReportType!, $from: DateTime!, $to: DateTime!, $tz: String) {
  statisticsReport(reportType: $type, from: $from, to: $to, timezone: $tz) {
    time sent successful failed toSend rejected deliveryRate opens clicks unsubscribes bounces
  }
}"""


def row(enterprise_id: str, created: datetime, status: str, n: int) -> dict[str, object]:
    # The id starts with the creation time, as new_id's do; the last digits tell rows apart.
    return {
        "id": id_floor("msg", created)[:-3] + f"{n:03d}",
        "enterprise_id": enterprise_id,
        "template_id": "tpl",
        "template_name": "T",
        "sender_address_id": "adr",
        "sender": "a@example.com",
        "recipient": "b@example.com",
        "subject": "s",
        "status": status,
        "attempts": 1,
        "send_method": "API",
        "created_at": created,
        "open_count": 0,
        "click_count": 0,
    }


async def test_a_daily_report_in_utc_and_in_shanghai(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    rows = []
    for n, (created, status) in enumerate(
        [
            (datetime(2024, 8, 16, 15, 10, tzinfo=UTC), "DELIVERED"),
            (datetime(2024, 8, 16, 17, 0, tzinfo=UTC), "DELIVERED"),
            (datetime(2024, 8, 16, 17, 5, tzinfo=UTC), "FAILED"),
            (datetime(2024, 8, 16, 17, 6, tzinfo=UTC), "REJECTED"),
        ]
    ):
        rows.append(row(enterprise.id, created, status, n))
    async with runtime.db.transaction() as session:
        await session.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
    async with runtime.db.transaction() as session:
        await rollup(session)
    variables = {"type": "DAILY", "from": "2024-08-16T00:00:00Z", "to": "2024-08-18T00:00:00Z"}
    utc = (await api(REPORT, variables)).ok()["statisticsReport"]
    assert [(r["time"], r["sent"], r["successful"], r["failed"], r["rejected"]) for r in utc] == [
        ("2024-08-16T00:00:00+00:00", 3, 2, 1, 1),
        ("2024-08-17T00:00:00+00:00", 0, 0, 0, 0),
    ]
    assert (
        utc[0]["deliveryRate"] == 2 / 3 and utc[0]["bounces"] == 1 and utc[1]["deliveryRate"] == 0
    )
    shanghai = {
        **variables,
        "from": "2024-08-15T16:00:00Z",
        "to": "2024-08-17T16:00:00Z",
        "tz": "Asia/Shanghai",
    }
    rows_sh = (await api(REPORT, shanghai)).ok()["statisticsReport"]
    assert [(r["time"], r["sent"]) for r in rows_sh] == [
        ("2024-08-15T16:00:00+00:00", 1),  # 16 August in Shanghai
        ("2024-08-16T16:00:00+00:00", 2),  # 17 August there begins at 16:00 UTC
    ]
    hourly = (await api(REPORT, {**variables, "type": "HOURLY"})).ok()["statisticsReport"]
    assert len(hourly) == 48 and hourly[17]["sent"] == 2


async def test_limits_and_bad_input(api: Api, enterprise: EnterpriseHandle) -> None:
    base = {"type": "DAILY", "from": "2024-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}
    (await api(REPORT, base)).error("BAD_USER_INPUT", "to")
    (await api(REPORT, {**base, "to": "2024-01-01T00:00:00Z"})).error("BAD_USER_INPUT", "to")
    year = (await api(REPORT, {**base, "to": "2025-01-01T00:00:00Z"})).ok()["statisticsReport"]
    assert len(year) == 366
    (await api(REPORT, {**base, "to": "2024-02-01T00:00:00Z", "tz": "Mars/Olympus"})).error(
        "BAD_USER_INPUT", "timezone"
    )
    (await api(REPORT, base, key=api.keys["operator"])).error("FORBIDDEN")
