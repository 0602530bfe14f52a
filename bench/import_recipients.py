"""Recipient-file import through the real code path: sandboxed parse, checks, bulk insert.

Run: ``.venv/bin/python bench/import_recipients.py [--postgres URL] [--rows N ...]``.
Generates .xlsx files of 10 000, 100 000 and 1 048 576 rows (a sheet's
maximum; five parameter columns bring that one close to 40 MB) with
xlsxwriter's constant_memory mode, cached under bench/out/. Each import runs
in a fresh process so peaks are its own; prints rows/s, the peak resident
memory of the importing process and of the sandbox child, and the CPU seconds
each used (parent+child: on a shared machine, the figure that does not depend
on what else runs). PostgreSQL's own processes are not counted. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
SIZES = (10_000, 100_000, 1_048_576)
PARAMS = ["name", "code", "city", "plan", "coupon"]


def generate(rows: int) -> Path:
    path = OUT / f"recipients-{rows}.xlsx"
    if path.exists():
        return path
    import xlsxwriter

    OUT.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    book = xlsxwriter.Workbook(str(partial), {"constant_memory": True})
    sheet = book.add_worksheet("recipients")
    sheet.write_row(0, 0, ["email", *PARAMS])
    for r in range(1, rows):
        sheet.write_string(r, 0, f"user{r}@example{r % 97}.org")
        sheet.write_string(r, 1, f"Customer {r}")
        sheet.write_number(r, 2, 100000 + r)
        sheet.write_string(r, 3, ("Paris", "Lagos", "Lima", "Osaka")[r % 4])
        sheet.write_string(r, 4, f"plan-{r % 7}")
        sheet.write_string(r, 5, f"C{r * 7919 % 1000003:07d}")
    book.close()
    partial.rename(path)
    return path


async def import_once(path: Path, database_url: str) -> dict[str, float]:
    from koomsg.core.db import Database
    from koomsg.core.recipients.importer import run_import
    from koomsg.core.tasks.models import SendingTask, SendingType
    from koomsg.core.tenancy.models import Enterprise
    from koomsg.migrations import upgrade_async

    await upgrade_async(database_url)
    db = Database(database_url)
    work = Path(tempfile.mkdtemp()) / path.name
    shutil.copyfile(path, work)  # the importer deletes the file it imported
    enterprise = Enterprise(name="bench")
    task = SendingTask(
        enterprise_id=enterprise.id, name="bench", subject="Hello {{name}}",
        template_id="tpl_bench", template_name="bench", body_type="PLAIN_TEXT",
        body=" ".join(f"{{{{{p}}}}}" for p in PARAMS),
        params=PARAMS, sender_address_id="adr_bench", sender_domain_id="dom_bench",
        sender_address="news@shop.example", sending_type=SendingType.NOW,
        recipient_file=str(work), recipient_file_kind="xlsx",
    )  # fmt: skip
    async with db.transaction() as session:
        session.add(enterprise)
        await session.flush()
        session.add(task)

    class BenchRuntime:
        pass

    runtime = BenchRuntime()
    runtime.db = db  # type: ignore[attr-defined]
    started = time.perf_counter()
    cpu_before = _cpu(resource.RUSAGE_SELF)
    report = await run_import(runtime, task_id=task.id)
    elapsed = time.perf_counter() - started
    await db.dispose()
    assert report is not None
    return {
        "rows": report.rows, "written": report.written, "errors": report.errors,
        "status": report.status, "seconds": elapsed,
        "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "parent_cpu": _cpu(resource.RUSAGE_SELF) - cpu_before, "child_cpu": _cpu(resource.RUSAGE_CHILDREN),
    }  # fmt: skip


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_in_fresh_process(path: Path, database_url: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--one", str(path), "--url", database_url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--postgres", help="also import into this PostgreSQL database (postgresql+asyncpg://…)"
    )
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--one")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(import_once(Path(args.one), args.url))))
        return
    targets = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    columns = ("rows", "file MB", "db", "seconds", "rows/s", "parent MB", "child MB", "CPU s")
    widths = (9, 8, 10, 8, 9, 10, 9, 12)
    print(" ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)), " status")
    for rows in args.rows:
        started = time.perf_counter()
        path = generate(rows)
        generated = time.perf_counter() - started
        if generated > 1:
            print(f"(generated {path.name} in {generated:.0f} s)")
        for kind, url in targets:
            if url is None:
                db_path = OUT / f"bench-{rows}.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
                url = f"sqlite+aiosqlite:///{db_path}"
            result = run_in_fresh_process(path, url)
            cpu = f"{result['parent_cpu']:.1f}+{result['child_cpu']:.1f}"
            print(
                f"{rows:>9} {path.stat().st_size / 1e6:>8.1f} {kind:>10} {result['seconds']:>8.1f} "
                f"{result['rows'] / result['seconds']:>9.0f} {result['parent_peak_mb']:>10.0f} "
                f"{result['child_peak_mb']:>9.0f} {cpu:>12}  {result['status']} "
                f"({result['written']} written)"
            )


if __name__ == "__main__":
    main()
