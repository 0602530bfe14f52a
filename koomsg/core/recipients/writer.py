"""Writing a task's message rows in bulk: one TO_SEND row per recipient.

A million-row recipient file makes this the import's hot path, so rows skip
SQLAlchemy's per-row parameter processing: each row is prepared as the very
values the driver stores (the params column as the JSON text the ORM would
write), the values every row shares go through their columns' bind
processors once per call, and each chunk is one statement (see ``_insert``).
A recipient on the suppression list gets a REJECTED row at once, so the
transport never sees it and the task's counts still add up.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.delivery.models import Message, MessageStatus, SendMethod
from koomsg.core.ids import new_ids
from koomsg.core.recipients.models import Suppression
from koomsg.core.recipients.service import fold, suppressed_among
from koomsg.core.tasks.models import SendingTask
from koomsg.core.templates.render import compile_subject, render_subject

MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
CHUNK = 20_000
# The per-row columns, in the order of a row; the shared ones follow in _insert.
ROW_COLUMNS = ("id", "recipient", "subject", "params")
# Per row only in a chunk with a suppressed recipient; else shared, which spares SQLite
# three JSON extractions a row.
OUTCOME_COLUMNS = ("status", "finished_at", "failure_reason", "dispatch_after")
# json_each arrived with JSON built in by default; older SQLite may lack it.
SQLITE_JSON = sqlite3.sqlite_version_info >= (3, 38, 0)
# As render.py's: a run of control characters in a subject value becomes one space.
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")

# (address, subject, params as JSON text): all strings, so a tuple of them is not
# tracked by the garbage collector; a million tracked rows cost seconds of full collections.
Prepared = tuple[str, str, str]


@dataclass(frozen=True)
class WriteResult:
    written: int
    rejected: int


def subject_filler(subject: str, names: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """``render_subject(subject, dict(zip(names, values)))[:1024]`` for many ``values``.

    The template is split once, not per row; values are treated as render_subject
    treats them.
    """
    segments = compile_subject(subject)
    literals = segments.literals
    if not segments.slots:
        fixed = literals[0][:1024]
        return lambda values: fixed
    position = {name: at for at, name in enumerate(names)}  # the last one wins, as in a dict
    parts = [
        (position.get(name), literal)
        for (name, _), literal in zip(segments.slots, literals[1:], strict=True)
    ]

    def fill(values: Sequence[Any]) -> str:
        out = [literals[0]]
        for at, literal in parts:
            value = None if at is None else values[at]
            text = value if type(value) is str else "" if value is None else str(value)
            # Every control character is unprintable: the cheap test spares the regex.
            out.append(text if text.isprintable() else _HEADER_UNSAFE.sub(" ", text))
            out.append(literal)
        return "".join(out)[:1024]

    return fill


def params_encoder(names: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """``json.dumps(dict(zip(names, values)))``, the text the ORM stores, for many ``values``."""
    if len(set(names)) != len(names):
        return lambda values: json.dumps(dict(zip(names, values, strict=True)))
    template = "{" + ", ".join(f"{json.dumps(name)}: %s" for name in names) + "}"

    def encode(values: Sequence[Any]) -> str:
        try:
            # json.dumps's own string encoder, without its per-call set-up (~3x cheaper).
            return template % tuple(map(encode_basestring_ascii, values))
        except TypeError:  # a value that is not a string
            return json.dumps(dict(zip(names, values, strict=True)))

    return encode


async def _suppression_reasons(
    session: AsyncSession, *, enterprise_id: str, prepared: Sequence[Prepared]
) -> dict[str, str]:
    # Most enterprises have a short list or none: one cheap probe avoids an IN query per chunk.
    probe = select(col(Suppression.id)).where(col(Suppression.enterprise_id) == enterprise_id)
    any_entry = await session.execute(probe.limit(1))
    if any_entry.first() is None:
        return {}
    addresses = [row[0] for row in prepared]
    listed = await suppressed_among(session, enterprise_id=enterprise_id, addresses=addresses)
    if not listed:
        return {}
    rows = await session.execute(
        select(col(Suppression.address), col(Suppression.reason)).where(
            Suppression.enterprise_id == enterprise_id,  # type: ignore[arg-type]
            Suppression.address.in_(sorted(listed)),  # type: ignore[attr-defined]
        )
    )
    return {address: str(reason) for address, reason in rows.all()}


async def write_messages(
    session: AsyncSession,
    *,
    task: SendingTask,
    recipients: Sequence[tuple[str, Mapping[str, str]]],
    now: datetime,
) -> WriteResult:
    """Insert one message per (normalised address, parameter values); no commit."""
    prepared = [
        (address, render_subject(task.subject, values)[:1024], json.dumps(dict(values)))
        for address, values in recipients
    ]
    return await _write(session, task=task, prepared=prepared, now=now)


async def write_rows(
    session: AsyncSession,
    *,
    task: SendingTask,
    rows: Sequence[Sequence[str]],
    now: datetime,
) -> WriteResult:
    """Insert one message per ``(normalised address, value of each task param, ...)``; no commit.

    The importer's form of write_messages: flat rows of strings, no mapping per row.
    """
    names = list(task.params)
    subject = subject_filler(task.subject, names)
    params = params_encoder(names)
    prepared = [(row[0], subject(row[1:]), params(row[1:])) for row in rows]
    return await _write(session, task=task, prepared=prepared, now=now)


def _stored(dialect: Dialect, name: str, value: Any) -> Any:
    """``value`` as the driver receives it for column ``name`` (SQLAlchemy's own conversion)."""
    processor = MESSAGE.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return value if processor is None else processor(value)


async def _write(
    session: AsyncSession, *, task: SendingTask, prepared: Sequence[Prepared], now: datetime
) -> WriteResult:
    reasons = await _suppression_reasons(
        session, enterprise_id=task.enterprise_id, prepared=prepared
    )
    # The raw insert below bypasses the unit of work: the task row must exist first.
    await session.flush()
    connection = await session.connection()
    dialect = connection.dialect
    shared: dict[str, Any] = {
        "enterprise_id": task.enterprise_id,
        "task_id": task.id,
        "send_method": SendMethod.CONSOLE.value,
        "template_id": task.template_id,
        "template_name": task.template_name,
        "template_revision": task.template_revision,
        "sender_address_id": task.sender_address_id,
        "sender": task.sender_address,
        "attempts": 0,
        "open_count": 0,
        "click_count": 0,
        "created_at": now,
    }
    shared = {name: _stored(dialect, name, value) for name, value in shared.items()}
    # Due at once, but the dispatcher only takes rows of SENDING tasks: starting a task
    # then needs no write to its (possibly million) rows.
    due = _stored(dialect, "dispatch_after", now)
    ids = new_ids("msg", len(prepared))
    rows: list[tuple[Any, ...]]
    columns: tuple[str, ...] = ROW_COLUMNS
    rejected = 0
    if not reasons:
        shared.update(
            zip(OUTCOME_COLUMNS, (MessageStatus.TO_SEND.value, None, None, due), strict=True)
        )
        rows = [(i, *row) for i, row in zip(ids, prepared, strict=True)]
    else:
        columns += OUTCOME_COLUMNS
        finished_at = _stored(dialect, "finished_at", now)
        rows = []
        for message_id, row in zip(ids, prepared, strict=True):
            reason = reasons.get(fold(row[0]))
            if reason is None:
                rows.append((message_id, *row, MessageStatus.TO_SEND.value, None, None, due))
            else:
                rejected += 1
                failure = f"recipient is on the suppression list ({reason.lower()})"
                rows.append(
                    (message_id, *row, MessageStatus.REJECTED.value, finished_at, failure, None)
                )
    for start in range(0, len(rows), CHUNK):
        await _insert(connection, columns, rows[start : start + CHUNK], shared)
    return WriteResult(written=len(rows), rejected=rejected)


async def _insert(
    connection: AsyncConnection,
    row_columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    shared: dict[str, Any],
) -> None:
    """One statement for ``rows`` (values of ``row_columns``, as stored) and ``shared``.

    Whatever the path, a row reads back through the ORM as an ORM-written one does.
    """
    dialect = connection.dialect
    columns = [*row_columns, *shared]
    names = ", ".join(columns)
    if dialect.name == "sqlite" and SQLITE_JSON:
        # One JSON array expanded by json_each: the whole chunk is a single sqlite3
        # step, which runs without the GIL (the importer checks the next chunk
        # meanwhile), and ~30% cheaper than executemany's binding of every value.
        extract = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(row_columns)))
        marks = ", ".join("?" for _ in shared)
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        await connection.exec_driver_sql(
            f"INSERT INTO message ({names}) SELECT {extract}, {marks} FROM json_each(?)",
            (*shared.values(), text),
        )
        return
    tail = tuple(shared.values())
    records = [(*row, *tail) for row in rows]
    if dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        # The COPY joins the session's transaction, begun by the statements before it
        # (the suppression probe at least): asyncpg would autocommit it otherwise.
        assert driver.is_in_transaction()
        await driver.copy_records_to_table("message", records=records, columns=columns)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"  # the driver's own style
    marks = ", ".join(mark for _ in columns)
    await connection.exec_driver_sql(f"INSERT INTO message ({names}) VALUES ({marks})", records)
