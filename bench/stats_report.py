"""Statistics reports over a year of messages: rollup time and report latency.

Fills a scratch database with messages spread over the last year (Core
executemany, a realistic status mix), runs the rollup once from scratch, then
times a yearly DAILY report and a monthly HOURLY report (median of several
runs, each in its own session, as the API does). Reports read only the
hourly aggregates, so their cost follows hours x (template, sender) pairs,
not the number of messages.

Run: ``.venv/bin/python bench/stats_report.py [--messages N] [--postgres URL]``.
With ``--postgres`` a database ``koomsg_bench_<random>`` is created on that
server and dropped at the end; otherwise a SQLite file in a temporary folder.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from koomsg.core.db import Database
from koomsg.core.delivery.models import Message
from koomsg.core.ids import _encode
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.stats.report import ReportType
from koomsg.core.stats.rollup import rollup
from koomsg.core.stats.service import statistics_report
from koomsg.core.tenancy.models import Enterprise
from koomsg.migrations import upgrade

MESSAGE = Message.__table__  # type: ignore[attr-defined]
STATUSES = ["DELIVERED"] * 90 + ["FAILED"] * 5 + ["REJECTED"] * 3 + ["TO_SEND"] * 2
CHUNK = 10_000


def _id_at(moment: datetime) -> str:
    return f"msg_{_encode((int(moment.timestamp() * 1000) << 80) | secrets.randbits(80))}"


async def fill(db: Database, enterprise_id: str, count: int, now: datetime) -> None:
    rng = random.Random(1)
    year = 365 * 86400
    for start in range(0, count, CHUNK):
        rows = []
        for _ in range(min(CHUNK, count - start)):
            created = now - timedelta(seconds=rng.random() * year)
            day = created.toordinal()
            rows.append(
                {
                    "id": _id_at(created),
                    "enterprise_id": enterprise_id,
                    "send_method": "CONSOLE",
                    # A campaign (template) per day, two sender addresses: a few rows per hour.
                    "template_id": f"tpl_{day % 30:02d}",
                    "template_name": "Campaign",
                    "sender_address_id": f"adr_{rng.randrange(2)}",
                    "sender": "news@shop.example",
                    "recipient": f"user{start}@example.org",
                    "subject": "Spring sale",
                    "status": rng.choice(STATUSES),
                    "attempts": 1,
                    "created_at": created,
                    "open_count": 0,
                    "click_count": 0,
                    "first_opened_at": created if rng.random() < 0.2 else None,
                }
            )
        async with db.transaction() as session:
            await session.execute(insert(MESSAGE), rows)


async def timed_report(
    db: Database, principal: Principal, kind: ReportType, start: datetime, end: datetime
) -> tuple[float, int]:
    times = []
    rows = 0
    for _ in range(7):
        began = time.perf_counter()
        async with db.session() as session:
            rows = len(
                await statistics_report(
                    session, principal=principal, report_type=kind, start=start, end=end
                )
            )
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, rows


async def run(url: str, count: int, label: str) -> None:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.transaction() as session:
            enterprise = Enterprise(name="Bench", real_name_verified=True, service_enabled=True)
            session.add(enterprise)
            await session.flush()
        principal = Principal(
            PrincipalKind.ENTERPRISE_ROOT, "bench", "key", enterprise_id=enterprise.id
        )
        now = datetime.now(UTC)
        began = time.perf_counter()
        await fill(db, enterprise.id, count, now)
        filled = time.perf_counter() - began
        began = time.perf_counter()
        async with db.transaction() as session:
            hours = await rollup(session)
        full = time.perf_counter() - began
        began = time.perf_counter()
        async with db.transaction() as session:
            await rollup(session)
        idle = time.perf_counter() - began
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        daily, daily_rows = await timed_report(
            db, principal, ReportType.DAILY, end - timedelta(days=366), end
        )
        hourly, hourly_rows = await timed_report(
            db, principal, ReportType.HOURLY, end - timedelta(days=31), end
        )
        print(f"[{label}] {count} messages inserted in {filled:.1f} s")
        print(
            f"[{label}] full rollup of {hours} hours: {full:.2f} s; "
            f"an idle pass: {idle * 1000:.1f} ms"
        )
        print(f"[{label}] yearly DAILY report ({daily_rows} rows): {daily:.1f} ms (median of 7)")
        print(
            f"[{label}] monthly HOURLY report ({hourly_rows} rows): {hourly:.1f} ms (median of 7)"
        )
    finally:
        await db.dispose()


async def _pg(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL", help="admin URL of a PostgreSQL server")
    args = parser.parse_args()
    if not args.postgres:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            asyncio.run(run(url, args.messages, "sqlite"))
        return
    admin = args.postgres.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"koomsg_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        asyncio.run(run(f"{base}/{name}", args.messages, "postgresql"))
    finally:
        asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
