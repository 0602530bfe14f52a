"""Importing recipient files into a task: rows, errors, statuses, crashes, retries."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from koomsg.core.clock import utcnow
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.errors import BadInput
from koomsg.core.recipients import importer
from koomsg.core.recipients import rows as row_checks
from koomsg.core.tasks.models import RecipientImportError, SendingTask, SendingType, TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import EnterpriseHandle, suppress_address


async def new_task(
    runtime: Runtime, enterprise: EnterpriseHandle, path: Path, *, kind: str = "xlsx", **fields: Any
) -> str:
    task = SendingTask(
        enterprise_id=enterprise.id,
        name="spring",
        subject="Hello {{name}}",
        template_id="tpl_1",
        template_name="welcome",
        body_type="PLAIN_TEXT",
        body="Hi {{name}}, code {{code}}",
        params=["name", "code"],
        sender_address_id="adr_1",
        sender_domain_id="dom_1",
        sender_address="news@shop.example",
        sending_type=fields.pop("sending_type", SendingType.NOW),
        recipient_file=str(path),
        recipient_file_kind=kind,
        **fields,
    )
    async with runtime.db.transaction() as session:
        session.add(task)
    return task.id


async def load(
    runtime: Runtime, task_id: str
) -> tuple[SendingTask, list[Message], list[RecipientImportError]]:
    async with runtime.db.session() as session:
        task = await session.get(SendingTask, task_id)
        messages = (
            await session.exec(
                select(Message).where(Message.task_id == task_id).order_by(Message.id)
            )
        ).all()
        errors = (
            await session.exec(
                select(RecipientImportError)
                .where(RecipientImportError.task_id == task_id)
                .order_by(RecipientImportError.row)
            )
        ).all()
    assert task is not None
    return task, list(messages), list(errors)


ROWS = [
    ["Email", "name", "code", "notes"],
    ["ann@example.org", "Ann", 1001, "x"],
    ["not-an-address", "Bob", 1002, None],
    ["cat@example.org", None, 1003, None],
    ["ANN@example.org", "Ann again", 1004, None],
    ["dan@Example.ORG", "Dan", 1005, None],
]
CSV = (
    "email,name,code\nann@example.org,Ann,1001\nnot-an-address,Bob,1002\n"
    "cat@example.org,,1003\nANN@example.org,Ann again,1004\ndan@Example.ORG,Dan,1005\n"
)


def expected_errors(errors: list[RecipientImportError]) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.value, e.reason.split(":")[0]) for e in errors]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_good_and_bad_rows(
    runtime: Runtime, enterprise: EnterpriseHandle, tmp_path: Path, make_xlsx: Any, kind: str
) -> None:
    path = tmp_path / f"r.{kind}"
    if kind == "xlsx":
        make_xlsx(path, ROWS)
    else:
        path.write_text(CSV)
    header = await importer.inspect_file(path, kind=kind, params=["name", "code"])
    assert header.params == {"name": 1, "code": 2}
    task_id = await new_task(runtime, enterprise, path, kind=kind)

    report = await importer.run_import(runtime, task_id=task_id)

    assert report is not None and report.written == 2
    task, messages, errors = await load(runtime, task_id)
    assert [(m.recipient, m.params, m.subject, m.status) for m in messages] == [
        ("ann@example.org", {"name": "Ann", "code": "1001"}, "Hello Ann", MessageStatus.TO_SEND),
        ("dan@example.org", {"name": "Dan", "code": "1005"}, "Hello Dan", MessageStatus.TO_SEND),
    ]
    assert expected_errors(errors) == [
        (3, "not-an-address", "invalid address"),
        (4, "cat@example.org", "missing value for parameter name"),
        (5, "ANN@example.org", "duplicate address"),
    ]
    assert task.status == TaskStatus.SENDING and task.import_error_count == 3
    assert task.recipient_file is None and not path.exists()
    assert all(m.dispatch_after is not None for m in messages)


async def test_scheduled_task_waits_and_suppressed_recipient_is_rejected(
    runtime: Runtime, enterprise: EnterpriseHandle, tmp_path: Path, make_xlsx: Any
) -> None:
    await suppress_address(runtime, enterprise.id, "dan@example.org", "HARD_BOUNCE")
    path = make_xlsx(tmp_path / "r.xlsx", ROWS)
    task_id = await new_task(
        runtime,
        enterprise,
        path,
        sending_type=SendingType.SCHEDULED,
        scheduled_at=utcnow() + timedelta(hours=1),
    )
    await importer.run_import(runtime, task_id=task_id)
    task, messages, _ = await load(runtime, task_id)
    assert task.status == TaskStatus.SCHEDULED
    dan = next(m for m in messages if m.recipient == "dan@example.org")
    assert dan.status == MessageStatus.REJECTED
    assert dan.failure_reason == "recipient is on the suppression list (hard_bounce)"
    # Nothing is dispatched while the task waits for its time.
    from koomsg.core.delivery.dispatch import dispatch_due

    enqueued: list[list[str]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: enqueued.append(ids))
    assert enqueued == []


async def test_parser_crash_fails_the_task_and_the_worker_lives_on(
    runtime: Runtime,
    enterprise: EnterpriseHandle,
    tmp_path: Path,
    make_xlsx: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [["email", "name", "code"]] + [[f"u{i}@example.org", "U", i] for i in range(5000)]
    path = make_xlsx(tmp_path / "r.xlsx", rows)
    task_id = await new_task(runtime, enterprise, path)
    monkeypatch.setenv(importer.CRASH_ENV, "4500")  # after a first chunk was written
    monkeypatch.setattr(importer, "COMMIT_ROWS", 2000)  # and with a second one in flight

    report = await importer.run_import(runtime, task_id=task_id)

    assert report is not None and report.status == TaskStatus.FAILED
    task, messages, errors = await load(runtime, task_id)
    assert (task.status, task.failure_reason) == (
        TaskStatus.FAILED,
        "recipient file could not be read",
    )
    assert messages == [] and errors == [] and not path.exists()
    assert os.getpid()  # still here: only the child aborted


async def test_retry_after_a_crash_starts_over_and_writes_nothing_twice(
    runtime: Runtime, enterprise: EnterpriseHandle, tmp_path: Path, make_xlsx: Any
) -> None:
    path = make_xlsx(tmp_path / "r.xlsx", ROWS)
    task_id = await new_task(runtime, enterprise, path)
    past = utcnow() - timedelta(minutes=10)
    # A worker that died mid-import: its claim ran out, its rows are still there.
    async with runtime.db.transaction() as session:
        task = await session.get(SendingTask, task_id)
        assert task is not None
        task.import_claimed_until = past
        session.add(
            Message(
                enterprise_id=enterprise.id,
                task_id=task_id,
                template_id="t",
                template_name="t",
                sender_address_id="a",
                sender="news@shop.example",
                recipient="ann@example.org",
                subject="s",
            )
        )
    assert await importer.expired_imports(runtime.db, now=utcnow()) == [task_id]
    await importer.run_import(runtime, task_id=task_id)
    _, messages, _ = await load(runtime, task_id)
    assert sorted(m.recipient for m in messages) == ["ann@example.org", "dan@example.org"]
    assert await importer.run_import(runtime, task_id=task_id) is None  # no longer PREPARING


async def test_a_claimed_import_is_not_run_twice(
    runtime: Runtime, enterprise: EnterpriseHandle, tmp_path: Path, make_xlsx: Any
) -> None:
    path = make_xlsx(tmp_path / "r.xlsx", ROWS)
    task_id = await new_task(
        runtime, enterprise, path, import_claimed_until=utcnow() + timedelta(minutes=1)
    )
    assert await importer.run_import(runtime, task_id=task_id) is None
    assert await importer.expired_imports(runtime.db, now=utcnow()) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not an .xlsx workbook"),
    ],
)
async def test_inspect_refuses_files_that_are_not_workbooks(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(content)
    with pytest.raises(BadInput) as caught:
        await importer.inspect_file(path, kind="xlsx", params=["name"])
    assert caught.value.field == "recipientFile" and reason in caught.value.message


async def test_inspect_refuses_a_zip_bomb_and_a_missing_column(
    tmp_path: Path, make_zip_bomb: Any, make_xlsx: Any
) -> None:
    with pytest.raises(BadInput, match="zip bomb"):
        await importer.inspect_file(make_zip_bomb(tmp_path / "b.xlsx"), kind="xlsx", params=[])
    with pytest.raises(BadInput, match="parameter code"):
        await importer.inspect_file(
            make_xlsx(tmp_path / "r.xlsx", [["email", "name"]]),
            kind="xlsx",
            params=["name", "code"],
        )


@pytest.mark.parametrize(
    "address",
    [
        "a@example.org",
        "First.Last+tag@Sub.Example.COM",
        "Postmaster@example.org",
        "x@localhost",
        "x@a.test",
        "x@a..org",
        "x@-a.org",
        "x@a.123",
        ".x@a.org",
        "x.@a.org",
        "a" * 65 + "@example.org",
        "x@xn--bcher-kva.example",
        "ü@example.org",
        "x@a-.org",
        "x@" + "a" * 64 + ".org",
    ],
)
def test_fast_address_check_agrees_with_email_validator(address: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    from koomsg.core.tasks.addresses import recipient_problem

    normalised, problem = row_checks.check_address(address)
    assert (problem is None) == (recipient_problem(address) is None)
    if problem is None:
        try:
            valid = validate_email(address, check_deliverability=False)
            # Sent to in ASCII form: internationalised domains as A-labels.
            assert normalised == (valid.ascii_email or valid.normalized)
        except EmailNotValidError:
            pytest.fail("accepted an address email-validator refuses")


def _workbook_with(tmp_path: Path, sheet: bytes, **extra: bytes) -> Path:
    import zipfile

    path = tmp_path / "crafted.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(
            "xl/workbook.xml",
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>',
        )
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in extra.items():
            archive.writestr(name.replace("__", "/"), data)
    return path


HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'
SHEET_OPEN = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


@pytest.mark.parametrize(
    ("sheet", "extra", "reason"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + SHEET_OPEN
            + b"<sheetData>"
            + HEADER_ROW
            + b"</sheetData></worksheet>",
            {},
            "DTD",
        ),
        (
            SHEET_OPEN
            + b'<dimension ref="A1:C5000000"/><sheetData>'
            + HEADER_ROW
            + b"</sheetData></worksheet>",
            {},
            "5,000,000 rows",
        ),
        (
            SHEET_OPEN
            + b"<sheetData>"
            + HEADER_ROW
            + b'<row r="9000000"><c r="A9000000" t="inlineStr"><is><t>a@b.org</t></is></c></row>'
            + b"</sheetData></worksheet>",
            {},
            "past a workbook",
        ),
        (
            SHEET_OPEN + b"<sheetData>" + HEADER_ROW + b"</sheetData></worksheet>",
            {"xl__sharedStrings.xml": b'<!DOCTYPE s [<!ENTITY a "aaaa">]><sst/>'},
            "DTD",
        ),
    ],
)
async def test_crafted_workbooks_are_refused(
    tmp_path: Path,
    sheet: bytes,
    extra: dict[str, bytes],
    reason: str,
    runtime: Runtime,
    enterprise: EnterpriseHandle,
) -> None:
    path = _workbook_with(tmp_path, sheet, **extra)
    if reason == "past a workbook":  # the header is fine: the import itself fails the task
        task_id = await new_task(runtime, enterprise, path)
        await importer.run_import(runtime, task_id=task_id)
        task, messages, _ = await load(runtime, task_id)
        assert task.status == TaskStatus.FAILED and messages == []
        return
    with pytest.raises(BadInput) as caught:
        await importer.inspect_file(path, kind="xlsx", params=[])
    assert caught.value.field == "recipientFile" and reason in caught.value.message


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_a_column_given_twice_is_refused(tmp_path: Path, make_xlsx: Any, kind: str) -> None:
    path = tmp_path / f"r.{kind}"
    rows = [["email", "name", "code", "Name"], ["a@example.org", "A", 1, "B"]]
    if kind == "xlsx":
        make_xlsx(path, rows)
    else:
        path.write_text("\n".join(",".join(map(str, row)) for row in rows) + "\n")
    with pytest.raises(BadInput) as caught:
        await importer.inspect_file(path, kind=kind, params=["name", "code"])
    assert "column Name twice (columns B and D)" in caught.value.message
    # An unused column twice is no ambiguity.
    make_xlsx(tmp_path / "ok.xlsx", [["email", "name", "code", "x", "x"]])
    await importer.inspect_file(tmp_path / "ok.xlsx", kind="xlsx", params=["name", "code"])


async def test_long_values_and_line_breaks_in_subject_values_are_row_errors(
    runtime: Runtime, enterprise: EnterpriseHandle, tmp_path: Path, make_xlsx: Any
) -> None:
    rows = [
        ["email", "name", "code"],
        ["ann@example.org", "Ann", "x" * 1024],
        ["bob@example.org", "Bob", "x" * 5000],
        ["cat@example.org", "Cat\r\nBcc: victim@example.org", "1"],
        ["dan@example.org", "Dan", "line\nbreaks are fine in the body"],
    ]
    path = make_xlsx(tmp_path / "r.xlsx", rows)
    task_id = await new_task(runtime, enterprise, path)  # subject "Hello {{name}}"
    await importer.run_import(runtime, task_id=task_id)
    _, messages, errors = await load(runtime, task_id)
    assert [m.recipient for m in messages] == ["ann@example.org", "dan@example.org"]
    assert [(e.row, e.reason) for e in errors] == [
        (3, "the value of code has more than 1024 characters"),
        (
            4,
            "the value of name goes into the subject and must not contain line breaks or "
            "control characters",
        ),
    ]


def test_the_sandbox_keeps_one_character_past_the_value_limit() -> None:
    from koomsg.core.recipients.sandbox import CELL_KEEP
    from koomsg.core.templates.params import MAX_PARAM_VALUE

    assert CELL_KEEP == MAX_PARAM_VALUE + 1
