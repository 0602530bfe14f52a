"""Importing a task's recipient file: sandboxed parsing, row checks, bulk message writes.

The file is parsed in a child process (``sandbox.py``) with memory and CPU
limits, because a crafted workbook can abort or balloon a parser; then only
the child dies and the task ends FAILED. The parent validates the rows the
child streams and writes messages chunk by chunk, each chunk committed with
a renewal of the task's import claim, so a chunk is only ever written by the
claim holder. A retried import (crash, lost claim) deletes what was written
and starts over: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

import koomsg
from koomsg.config import Settings
from koomsg.core.clock import utcnow
from koomsg.core.db import Database
from koomsg.core.delivery.models import Message
from koomsg.core.delivery.service import start_task
from koomsg.core.errors import BadInput
from koomsg.core.notices import changed
from koomsg.core.recipients.parse_slots import HEADER_READS, import_slot_free
from koomsg.core.recipients.rows import RowChecker
from koomsg.core.recipients.writer import write_rows
from koomsg.core.tasks.models import RecipientImportError, SendingTask, SendingType, TaskStatus
from koomsg.core.templates.params import parse_params
from koomsg.core.templates.render import compile_template

log = logging.getLogger(__name__)
PACKAGE_PARENT = Path(koomsg.__file__).resolve().parent.parent

FIELD = "recipientFile"
MAX_FILE_BYTES = 40 * 1024 * 1024
MAX_KEPT_ERRORS = 5000
CLAIM_SECONDS = 120
# Rows per transaction. Each commit writes the index pages it touched (eight b-trees
# on message) and costs a few round trips; 2000-row commits made a 1M-row import
# half again as slow. Larger ones gained nothing and cost memory (~1 KB a row, twice).
COMMIT_ROWS = 50_000
UNREADABLE = "recipient file could not be read"
# Address space, not resident memory: the interpreter maps ~30 MB before reading anything.
SANDBOX_MEMORY_BYTES = 512 * 1024 * 1024
SANDBOX_CPU_SECONDS = 120
SANDBOX_WALL_SECONDS = 300
PIPE_LIMIT = 16 * 1024 * 1024
# Tests only: the child aborts after this many rows, standing for a parser crash.
CRASH_ENV = "KOOMSG_TEST_IMPORT_CRASH_AFTER"
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from koomsg.core.recipients.sandbox import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class FileHeader:
    """Column positions (0-based) of the email column and of each template parameter."""

    email: int
    params: dict[str, int]


@dataclass
class ImportReport:
    rows: int = 0
    written: int = 0
    rejected: int = 0
    errors: int = 0
    status: str = ""
    # The current import claim (renewed per chunk): whoever holds it may write.
    claim: datetime | None = None


class SandboxFailed(Exception):
    """The child died, hit a limit or stopped without finishing its output."""


# ----------------------------------------------------------------- the child
async def _spawn(
    mode: str, kind: str, path: Path, params: Sequence[str]
) -> asyncio.subprocess.Process:
    package_parent = str(PACKAGE_PARENT)
    crash_after = os.environ.get(CRASH_ENV, "-1")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", _BOOTSTRAP, package_parent,
        mode, kind, str(path), json.dumps(list(params)),
        str(SANDBOX_MEMORY_BYTES), str(SANDBOX_CPU_SECONDS), crash_after,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"},
        limit=PIPE_LIMIT,
    )  # fmt: skip


async def sandbox_messages(
    mode: str, kind: str, path: Path, params: Sequence[str]
) -> AsyncGenerator[dict[str, Any], None]:
    """The child's JSON messages; SandboxFailed if it does not finish cleanly."""
    process = await _spawn(mode, kind, path, params)
    assert process.stdout is not None
    deadline = asyncio.get_running_loop().time() + SANDBOX_WALL_SECONDS
    ended = False
    try:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                line = await asyncio.wait_for(process.stdout.readline(), max(remaining, 0.001))
            except (TimeoutError, ValueError) as exc:  # ValueError: a line over the pipe limit
                raise SandboxFailed(f"reader stopped: {type(exc).__name__}") from None
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                raise SandboxFailed("reader wrote something that is not JSON") from None
            ended = (
                ended
                or "end" in message
                or "refused" in message
                or (mode == "header" and "header" in message)
            )
            yield message
        code = await process.wait()
        if code != 0 or not ended:
            raise SandboxFailed(f"reader exited with {code}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def inspect_file(
    path: Path, *, kind: str, params: Sequence[str], enterprise_id: str | None = None
) -> FileHeader:
    """Refuse a file that is not a readable spreadsheet or lacks a needed column; read no row.

    With ``enterprise_id``, the read takes one of the process's header slots first.
    """
    if enterprise_id is None:
        return await _inspect(path, kind=kind, params=params)
    async with HEADER_READS.slot(enterprise_id):
        return await _inspect(path, kind=kind, params=params)


async def _inspect(path: Path, *, kind: str, params: Sequence[str]) -> FileHeader:
    if kind not in ("xlsx", "csv"):
        raise BadInput(FIELD, "upload the recipients as an .xlsx workbook or a .csv file")
    if (await asyncio.to_thread(path.stat)).st_size > MAX_FILE_BYTES:
        raise BadInput(
            FIELD, f"the recipient file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        )
    try:
        async with aclosing(sandbox_messages("header", kind, path, params)) as messages:
            async for message in messages:
                if "refused" in message:
                    raise BadInput(FIELD, str(message["refused"]))
                if "header" in message:
                    found = message["header"]
                    return FileHeader(
                        email=int(found["email"]),
                        params={k: int(v) for k, v in found["params"].items()},
                    )
    except SandboxFailed:
        log.warning("recipient file %s: the reader failed", path.name)
    raise BadInput(FIELD, "the recipient file could not be read")


# ----------------------------------------------------------------- the import
async def _claim(
    session: AsyncSession, *, task_id: str, now: datetime, held: datetime | None
) -> datetime | None:
    """Take or renew the task's import claim; None when another worker or a cancel has it."""
    until = now + timedelta(seconds=CLAIM_SECONDS)
    condition = (
        or_(
            col(SendingTask.import_claimed_until).is_(None),
            col(SendingTask.import_claimed_until) < now,
        )
        if held is None
        else col(SendingTask.import_claimed_until) == held
    )
    result = await session.execute(
        update(SendingTask)
        .where(
            col(SendingTask.id) == task_id,
            col(SendingTask.status) == TaskStatus.PREPARING,
            condition,
        )
        .values(import_claimed_until=until)
    )
    return until if result.rowcount else None  # type: ignore[attr-defined]


async def _reset(session: AsyncSession, *, task_id: str) -> None:
    await session.execute(delete(Message).where(col(Message.task_id) == task_id))
    await session.execute(
        delete(RecipientImportError).where(col(RecipientImportError.task_id) == task_id)
    )


class LostClaim(Exception):
    pass


class HasDatabase(Protocol):
    """What ``run_import`` needs of the process runtime."""

    @property
    def db(self) -> Database: ...

    @property
    def settings(self) -> Settings: ...


async def run_import(
    runtime: HasDatabase, *, task_id: str, now: datetime | None = None
) -> ImportReport | None:
    """Import the recipient file of a PREPARING task; None when it is not ours to import."""
    db = runtime.db
    moment = now or utcnow()
    async with db.transaction() as session:
        if not await _slot_free(session, runtime.settings, task_id=task_id, now=moment):
            return None  # waits, PREPARING: the import sweeper offers it again
        claim = await _claim(session, task_id=task_id, now=moment, held=None)
        if claim is None:
            return None
        await _reset(session, task_id=task_id)
        task = await session.get(SendingTask, task_id)
        assert task is not None
    report = ImportReport()
    path = Path(task.recipient_file) if task.recipient_file else None
    try:
        if path is None or not path.is_file():
            raise SandboxFailed("the recipient file is gone")
        report.claim = claim
        await _stream(db, task=task, path=path, report=report)
        report.status = await _finish(db, task_id=task_id, report=report, now=now)
    except SandboxFailed as exc:
        log.warning("task %s: %s", task_id, exc)
        report.status = await _fail(db, task_id=task_id, claim=report.claim or claim, now=now)
    except LostClaim:
        log.info("task %s: import claim lost (canceled or taken over)", task_id)
        return None
    if report.status and path is not None:
        path.unlink(missing_ok=True)
    return report


async def _slot_free(
    session: AsyncSession, settings: Settings, *, task_id: str, now: datetime
) -> bool:
    task = await session.get(SendingTask, task_id)
    if task is None:
        return True  # _claim finds nothing to import
    return await import_slot_free(
        session,
        enterprise_id=task.enterprise_id,
        now=now,
        per_enterprise=settings.max_parses_per_enterprise,
        total=settings.max_parses,
    )


async def _stream(db: Database, *, task: SendingTask, path: Path, report: ImportReport) -> None:
    checker = RowChecker(
        list(task.params),
        header_params=frozenset(parse_params(task.subject, field="subject")),
        compiled=compile_template(task.body, task.body_type),
        subject=task.subject,
    )
    kind = task.recipient_file_kind or "xlsx"
    good: list[tuple[str, ...]] = []
    bad: list[tuple[int, str, str]] = []
    # The chunk being written while the next one is read and checked: on SQLite the
    # insert runs in the driver's thread without the GIL, on PostgreSQL in the server.
    writing: asyncio.Task[None] | None = None
    try:
        async with aclosing(sandbox_messages("rows", kind, path, task.params)) as messages:
            async for message in messages:
                if "refused" in message:
                    raise SandboxFailed(f"refused: {message['refused']}")
                batch = message.get("rows")
                if not batch:
                    continue
                try:
                    checker.check(batch, good, bad)
                except ValueError as exc:  # a malformed row: the reader is not to be trusted
                    raise SandboxFailed(str(exc)) from None
                report.rows += len(batch)
                # readline() does not yield while the child is ahead: without this the
                # chunk being written waits for the whole pipe buffer between statements.
                await asyncio.sleep(0)
                if len(good) + len(bad) >= COMMIT_ROWS:
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(
                        _write_chunk(db, task=task, good=good, bad=bad, report=report)
                    )
                    good, bad = [], []
        if writing is not None:
            await writing
        writing = None
        if good or bad:
            await _write_chunk(db, task=task, good=good, bad=bad, report=report)
    finally:
        if writing is not None:
            # Settle the chunk in flight first: _fail acts on the claim it renews.
            with contextlib.suppress(Exception):
                await writing


async def _renew(
    session: AsyncSession, *, task_id: str, now: datetime, report: ImportReport
) -> None:
    renewed = await _claim(session, task_id=task_id, now=now, held=report.claim)
    if renewed is None:
        raise LostClaim
    report.claim = renewed


async def _write_chunk(
    db: Database,
    *,
    task: SendingTask,
    good: list[tuple[str, ...]],
    bad: list[tuple[int, str, str]],
    report: ImportReport,
) -> None:
    now = utcnow()
    async with db.transaction() as session:
        await _renew(session, task_id=task.id, now=now, report=report)
        if good:
            result = await write_rows(session, task=task, rows=good, now=now)
            report.written += result.written
            report.rejected += result.rejected
        keep = bad[: max(0, MAX_KEPT_ERRORS - report.errors)]
        if keep:
            await session.execute(
                insert(RecipientImportError.__table__),  # type: ignore[attr-defined]
                [
                    {"task_id": task.id, "row": row, "value": value[:512], "reason": reason[:512]}
                    for row, value, reason in keep
                ],
            )
    # Counted after commit: a rolled-back chunk must not count.
    report.errors += len(bad)


async def _finish(db: Database, *, task_id: str, report: ImportReport, now: datetime | None) -> str:
    async with db.transaction() as session:
        moment = now or utcnow()
        await _renew(session, task_id=task_id, now=moment, report=report)
        task = await session.get(SendingTask, task_id, populate_existing=True)
        assert task is not None
        task.import_error_count = report.errors
        changed(session, task_id)
        task.import_claimed_until = None
        task.recipient_file = None
        scheduled = task.scheduled_at
        if task.sending_type == SendingType.SCHEDULED and scheduled and scheduled > moment:
            task.status = TaskStatus.SCHEDULED
            session.add(task)
        else:
            await start_task(session, task=task, now=moment)
        await session.flush()
        await session.refresh(task)
        return str(task.status)


async def _fail(db: Database, *, task_id: str, claim: datetime, now: datetime | None) -> str:
    async with db.transaction() as session:
        moment = now or utcnow()
        if await _claim(session, task_id=task_id, now=moment, held=claim) is None:
            return ""
        await _reset(session, task_id=task_id)
        task = await session.get(SendingTask, task_id, populate_existing=True)
        assert task is not None
        task.status = TaskStatus.FAILED
        task.failure_reason = UNREADABLE
        changed(session, task_id)
        task.finished_at = moment
        task.import_claimed_until = None
        task.recipient_file = None
        session.add(task)
    return str(TaskStatus.FAILED)


async def expired_imports(db: Database, *, now: datetime, limit: int = 100) -> list[str]:
    """PREPARING tasks nobody is importing (a lost message or a dead worker)."""
    async with db.session() as session:
        rows = await session.execute(
            select(col(SendingTask.id))
            .where(
                col(SendingTask.status) == TaskStatus.PREPARING,
                or_(
                    # A new task's request is normally in flight: a moment before re-requesting.
                    and_(
                        col(SendingTask.import_claimed_until).is_(None),
                        col(SendingTask.created_at) < now - timedelta(seconds=10),
                    ),
                    col(SendingTask.import_claimed_until) < now,
                ),
            )
            # Oldest first: imports waiting for a parse slot go in the order they came.
            .order_by(col(SendingTask.created_at))
            .limit(limit)
        )
        return [row[0] for row in rows.all()]
