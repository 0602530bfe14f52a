from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.tasks.models import TaskAttachment
from koomsg.core.tasks.scheduler import start_due_tasks
from koomsg.runtime import Runtime
from koomsg.testing.plugin import (
    Api,
    EnterpriseHandle,
    SendableSetup,
    WritesNothing,
    count_rows,
    sendable_setup,
    suppress_address,
)

TASK_FIELDS = """id name subject sendingType scheduledAt status createdAt
  template { id name } sender { id address } counts { total toSend delivered failed rejected }
  importErrors { row value reason }"""
CREATE = (
    "mutation($input: CreateSendingTaskInput!) "
    f"{{ createSendingTask(input: $input) {{ {TASK_FIELDS} }} }}"
)
CANCEL = f"mutation($id: ID!) {{ cancelSendingTask(id: $id) {{ {TASK_FIELDS} }} }}"
LIST = f"""query($filter: SendingTaskFilter, $first: Int, $after: String) {{
  sendingTasks(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {TASK_FIELDS} }} }} }} }}"""
DELETE_TEMPLATE = "mutation($id: ID!) { deleteTemplate(id: $id) }"
DELETE_DOMAIN = "mutation($id: ID!) { deleteSenderDomain(id: $id) }"
ATTACHMENT_LIMIT = 4 * 1024 * 1024


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime)


def task_input(setup: SendableSetup, **extra: Any) -> dict[str, Any]:
    base = {
        "name": "September news",
        "subject": "Our news",
        "templateId": setup.template_id,
        "senderAddressId": setup.sender_address_id,
        "sendingType": "NOW",
        "recipients": ["ann@example.org"],
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


async def messages_of(runtime: Runtime, task_id: str) -> list[Message]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Message).where(Message.task_id == task_id).order_by(Message.recipient)
        )
        return list(rows.scalars().all())


async def test_now_task_with_typed_recipients(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    recipients = ["Ann@Example.org", "ann@example.org", "bob@example.org"]
    task = (await api(CREATE, {"input": task_input(setup, recipients=recipients)})).ok()[
        "createSendingTask"
    ]
    assert task["id"].startswith("tsk_") and task["status"] == "SENDING"
    assert task["template"]["id"] == setup.template_id
    assert task["sender"] == {"id": setup.sender_address_id, "address": setup.sender}
    # Duplicates in any case are folded.
    assert task["counts"] == {"total": 2, "toSend": 2, "delivered": 0, "failed": 0, "rejected": 0}
    rows = await messages_of(runtime, task["id"])
    assert all(r.status == MessageStatus.TO_SEND and r.dispatch_after is not None for r in rows)
    assert all(r.send_method == "CONSOLE" and r.subject == "Our news" for r in rows)
    node = (
        await api(
            "query($id: ID!) { node(id: $id) { ... on SendingTask { name } } }", {"id": task["id"]}
        )
    ).ok()
    assert node["node"] == {"name": "September news"}


async def test_suppressed_recipient_is_rejected(
    api: Api, setup: SendableSetup, runtime: Runtime, enterprise: EnterpriseHandle
) -> None:
    await suppress_address(runtime, enterprise.id, "gone@example.org", "UNSUBSCRIBED")
    task = (
        await api(
            CREATE, {"input": task_input(setup, recipients=["Gone@example.org", "ann@example.org"])}
        )
    ).ok()["createSendingTask"]
    assert task["counts"]["rejected"] == 1 and task["counts"]["toSend"] == 1
    rejected = [
        r for r in await messages_of(runtime, task["id"]) if r.status == MessageStatus.REJECTED
    ]
    assert rejected[0].failure_reason == "recipient is on the suppression list (unsubscribed)"
    assert rejected[0].dispatch_after is None


async def test_all_suppressed_completes_at_once(
    api: Api, setup: SendableSetup, runtime: Runtime, enterprise: EnterpriseHandle
) -> None:
    await suppress_address(runtime, enterprise.id, "gone@example.org", "MANUAL")
    task = (await api(CREATE, {"input": task_input(setup, recipients=["gone@example.org"])})).ok()[
        "createSendingTask"
    ]
    assert task["status"] == "COMPLETED"


def later(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("empty name", {"name": "  "}, "BAD_USER_INPUT", "name"),
    ("long name", {"name": "x" * 129}, "BAD_USER_INPUT", "name"),
    ("empty subject", {"subject": ""}, "BAD_USER_INPUT", "subject"),
    ("long subject", {"subject": "s" * 257}, "BAD_USER_INPUT", "subject"),
    ("subject with LF", {"subject": "Hi\nBcc: x@example.org"}, "BAD_USER_INPUT", "subject"),
    ("encoded word", {"subject": "=?utf-8?q?Hi=0D=0ABcc:_x?="}, "BAD_USER_INPUT", "subject"),
    ("unknown param in subject", {"subject": "Hi {{name}}"}, "BAD_USER_INPUT", "subject"),
    (
        "no such template",
        {"templateId": "tpl_00000000000000000000000000"},
        "NOT_FOUND",
        "templateId",
    ),
    (
        "no such sender",
        {"senderAddressId": "adr_00000000000000000000000000"},
        "NOT_FOUND",
        "senderAddressId",
    ),
    ("scheduled without time", {"sendingType": "SCHEDULED"}, "BAD_USER_INPUT", "scheduledAt"),
    (
        "scheduled in the past",
        {"sendingType": "SCHEDULED", "scheduledAt": "2020-01-01T00:00:00+00:00"},
        "BAD_USER_INPUT",
        "scheduledAt",
    ),
    (
        "scheduled too far",
        {"sendingType": "SCHEDULED", "scheduledAt": later(days=91)},
        "BAD_USER_INPUT",
        "scheduledAt",
    ),
    ("now with a time", {"scheduledAt": later(days=1)}, "BAD_USER_INPUT", "scheduledAt"),
    ("no recipients", {"recipients": []}, "BAD_USER_INPUT", "recipients"),
    (
        "invalid recipient",
        {"recipients": ["ann@example.org", "not-an-address"]},
        "BAD_USER_INPUT",
        "recipients",
    ),
    (
        "eleven recipients",
        {"recipients": [f"r{i}@example.org" for i in range(11)]},
        "BAD_USER_INPUT",
        "recipients",
    ),
]


@pytest.mark.parametrize(("case", "change", "code", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_input_writes_nothing(
    api: Api,
    setup: SendableSetup,
    assert_writes_nothing: WritesNothing,
    case: str,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    async with assert_writes_nothing():
        (await api(CREATE, {"input": task_input(setup, **change)})).error(code, field)


async def test_ten_recipients_pass(api: Api, setup: SendableSetup) -> None:
    task = (
        await api(
            CREATE,
            {"input": task_input(setup, recipients=[f"r{i}@example.org" for i in range(10)])},
        )
    ).ok()["createSendingTask"]
    assert task["counts"]["total"] == 10


async def test_neither_or_both_recipient_sources(
    api: Api, setup: SendableSetup, assert_writes_nothing: WritesNothing
) -> None:
    async with assert_writes_nothing():
        (await api(CREATE, {"input": task_input(setup, recipients=None)})).error(
            "BAD_USER_INPUT", "recipients"
        )
        query_input = task_input(setup, recipientFile=None)
        query_input["recipientFile"] = None
        response = await api.upload(
            CREATE,
            {"input": query_input},
            {"input.recipientFile": ("r.csv", b"email\nann@example.org\n", "text/csv")},
        )
        response.error("BAD_USER_INPUT", "recipients")


async def test_template_with_params_needs_a_file(
    api: Api, runtime: Runtime, enterprise: EnterpriseHandle, assert_writes_nothing: WritesNothing
) -> None:
    setup = await sendable_setup(api, runtime, body="<p>Hi {{name}}</p>")
    async with assert_writes_nothing():
        error = (await api(CREATE, {"input": task_input(setup)})).error(
            "BAD_USER_INPUT", "recipients"
        )
        assert "file" in error["message"]


async def test_unapproved_template_and_unverified_domain(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    from koomsg.core.domains.models import DomainStatus, SenderDomain
    from koomsg.core.templates.models import Template, TemplateStatus

    async with runtime.db.transaction() as session:
        await session.execute(
            update(Template)
            .where(Template.id == setup.template_id)
            # A template whose only revision was rejected has nothing approved to send.
            .values(status=TemplateStatus.REJECTED, approved_revision=None)
        )  # type: ignore[arg-type]
    (await api(CREATE, {"input": task_input(setup)})).error("PRECONDITION_FAILED", "templateId")
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Template)
            .where(Template.id == setup.template_id)
            .values(status=TemplateStatus.APPROVED, approved_revision=1)
        )  # type: ignore[arg-type]
        await session.execute(
            update(SenderDomain)
            .where(SenderDomain.id == setup.domain_id)
            .values(status=DomainStatus.VERIFICATION_FAILED)
        )  # type: ignore[arg-type]
    (await api(CREATE, {"input": task_input(setup)})).error(
        "PRECONDITION_FAILED", "senderAddressId"
    )
    assert await count_rows(runtime, "sending_task") == 0


async def test_other_tenants_objects_are_not_found(
    api: Api, setup: SendableSetup, runtime: Runtime, make_enterprise: Any
) -> None:
    other = await make_enterprise("Other")
    (await api(CREATE, {"input": task_input(setup)}, key=other.key)).error(
        "NOT_FOUND", "templateId"
    )
    task = (await api(CREATE, {"input": task_input(setup)})).ok()["createSendingTask"]
    (await api(CANCEL, {"id": task["id"]}, key=other.key)).error("NOT_FOUND")
    listed = (await api(LIST, key=other.key)).ok()["sendingTasks"]
    assert listed["totalCount"] == 0


# ------------------------------------------------------------------ attachments
async def test_attachment_limit_is_four_megabytes(
    api: Api, setup: SendableSetup, runtime: Runtime, assert_writes_nothing: WritesNothing
) -> None:
    half = ATTACHMENT_LIMIT // 2
    files = {
        "input.attachments.0": (
            "a.pdf",
            b"%PDF-1.4\n" + b"0" * (half - 9),
            "application/octet-stream",
        ),
        "input.attachments.1": ("notes.txt", b"n" * half, "text/plain"),
    }
    variables = {"input": task_input(setup, attachments=[None, None])}
    task = (await api.upload(CREATE, variables, files)).ok()["createSendingTask"]
    async with runtime.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(TaskAttachment).where(TaskAttachment.task_id == task["id"])
                )
            )
            .scalars()
            .all()
        )
    assert sorted((r.filename, r.content_type, r.size) for r in rows) == [
        ("a.pdf", "application/pdf", half),
        ("notes.txt", "text/plain", half),
    ]
    files["input.attachments.1"] = ("notes.txt", b"n" * (half + 1), "text/plain")
    async with assert_writes_nothing():
        (await api.upload(CREATE, variables, files)).error("BAD_USER_INPUT", "attachments")


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("setup.exe", b"whatever"),
        ("invoice.pdf", b"MZ\x90\x00rest"),
        ("tool", b"\x7fELF\x02\x01"),
        ("run.JS", b"alert(1)"),
    ],
)
async def test_executables_are_refused(
    api: Api, setup: SendableSetup, assert_writes_nothing: WritesNothing, filename: str, data: bytes
) -> None:
    async with assert_writes_nothing():
        error = (
            await api.upload(
                CREATE,
                {"input": task_input(setup, attachments=[None])},
                {"input.attachments.0": (filename, data, "application/octet-stream")},
            )
        ).error("BAD_USER_INPUT", "attachments")
        assert filename in error["message"]


async def test_recipient_file_too_large_or_wrong_kind(
    api: Api, setup: SendableSetup, assert_writes_nothing: WritesNothing
) -> None:
    big = b"PK\x03\x04" + b"0" * (40 * 1024 * 1024 - 3)
    variables = {"input": task_input(setup, recipients=None, recipientFile=None)}
    variables["input"]["recipientFile"] = None
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    async with assert_writes_nothing():
        (await api.upload(CREATE, variables, {"input.recipientFile": ("r.xlsx", big, xlsx)})).error(
            "BAD_USER_INPUT", "recipientFile"
        )
        (
            await api.upload(
                CREATE,
                variables,
                {"input.recipientFile": ("r.pdf", b"%PDF-1.4", "application/pdf")},
            )
        ).error("BAD_USER_INPUT", "recipientFile")


# ------------------------------------------------------------------ scheduling and cancelling
async def test_scheduled_task_starts_after_a_restart(
    api: Api, setup: SendableSetup, runtime: Runtime, koomsg_settings: Any
) -> None:
    task = (
        await api(
            CREATE,
            {"input": task_input(setup, sendingType="SCHEDULED", scheduledAt=later(seconds=2))},
        )
    ).ok()["createSendingTask"]
    assert task["status"] == "SCHEDULED" and task["counts"]["toSend"] == 1
    assert await start_due_tasks(runtime.db) == 0  # not due yet
    # Its messages are not dispatched while the task waits for its time.
    from koomsg.core.delivery.dispatch import dispatch_due

    enqueued: list[list[str]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: enqueued.append(ids))
    assert enqueued == []
    await asyncio.sleep(2.1)
    from koomsg.worker.jobs.tasks import start_scheduled_tasks

    restarted = Runtime.build(koomsg_settings)
    try:
        await start_scheduled_tasks(restarted)
    finally:
        await restarted.close()
    listed = (await api(LIST, {"filter": {"status": "SENDING"}})).ok()["sendingTasks"]
    assert [e["node"]["id"] for e in listed["edges"]] == [task["id"]]
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: enqueued.append(ids))
    assert [len(ids) for ids in enqueued] == [1], "dispatched once the task is SENDING"
    # A second scheduler (another process) finds nothing left to claim.
    assert await start_due_tasks(runtime.db) == 0


async def test_cancel_before_start_sends_nothing(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    task = (
        await api(
            CREATE,
            {"input": task_input(setup, sendingType="SCHEDULED", scheduledAt=later(seconds=1))},
        )
    ).ok()["createSendingTask"]
    canceled = (await api(CANCEL, {"id": task["id"]})).ok()["cancelSendingTask"]
    assert canceled["status"] == "CANCELED"
    assert canceled["counts"]["total"] == 0
    assert await messages_of(runtime, task["id"]) == []
    await asyncio.sleep(1.1)
    assert await start_due_tasks(runtime.db) == 0
    listed = (await api(LIST, {"filter": {"status": "CANCELED"}})).ok()["sendingTasks"]
    assert listed["totalCount"] == 1
    (await api(CANCEL, {"id": task["id"]})).error("PRECONDITION_FAILED", "id")


async def test_cancel_of_a_started_or_completed_task_is_refused(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    task = (await api(CREATE, {"input": task_input(setup)})).ok()["createSendingTask"]
    (await api(CANCEL, {"id": task["id"]})).error("PRECONDITION_FAILED", "id")
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Message)
            .where(Message.task_id == task["id"])
            .values(status=MessageStatus.DELIVERED)
        )  # type: ignore[arg-type]
        assert await complete_task_if_done(session, task_id=task["id"], now=now)
    (await api(CANCEL, {"id": task["id"]})).error("PRECONDITION_FAILED", "id")
    (await api(CANCEL, {"id": "tsk_00000000000000000000000000"})).error("NOT_FOUND", "id")


async def test_deletion_guards(api: Api, setup: SendableSetup) -> None:
    task = (
        await api(
            CREATE, {"input": task_input(setup, sendingType="SCHEDULED", scheduledAt=later(days=1))}
        )
    ).ok()["createSendingTask"]
    error = (await api(DELETE_TEMPLATE, {"id": setup.template_id})).error("CONFLICT")
    assert task["id"] in error["message"]
    error = (await api(DELETE_DOMAIN, {"id": setup.domain_id})).error("CONFLICT")
    assert task["id"] in error["message"]
    (await api(CANCEL, {"id": task["id"]})).ok()
    (await api(DELETE_TEMPLATE, {"id": setup.template_id})).ok()
    # The task still shows the template it snapshotted.
    listed = (await api(LIST)).ok()["sendingTasks"]
    assert listed["edges"][0]["node"]["template"] == {"id": setup.template_id, "name": "Welcome"}


# ------------------------------------------------------------------ search
async def test_search_and_pagination(api: Api, setup: SendableSetup, runtime: Runtime) -> None:
    other = await sendable_setup(api, runtime, template_name="Receipt", domain="m2.example.com")
    ids = []
    for i in range(5):
        which = setup if i % 2 == 0 else other
        made = (await api(CREATE, {"input": task_input(which, name=f"Campaign {i}")})).ok()[
            "createSendingTask"
        ]
        ids.append(made["id"])
    seen: list[str] = []
    after = None
    while True:
        page = (await api(LIST, {"first": 2, "after": after})).ok()["sendingTasks"]
        assert page["totalCount"] == 5
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))

    async def names(filter: dict[str, Any]) -> list[str]:
        page = (await api(LIST, {"filter": filter})).ok()["sendingTasks"]
        return [e["node"]["name"] for e in page["edges"]]

    assert await names({"name": "campaign 3"}) == ["Campaign 3"]
    assert await names({"templateName": "receipt"}) == ["Campaign 3", "Campaign 1"]
    assert await names({"templateId": setup.template_id}) == [
        "Campaign 4",
        "Campaign 2",
        "Campaign 0",
    ]
    assert await names({"status": "SCHEDULED"}) == []
    assert len(await names({"createdFrom": later(minutes=-5), "createdTo": later(minutes=5)})) == 5
    assert await names({"createdFrom": later(minutes=5)}) == []


# ------------------------------------------------------------------ recipient files
async def test_recipient_file_is_saved_inspected_and_removed_on_cancel(
    api: Api, runtime: Runtime, enterprise: EnterpriseHandle, assert_writes_nothing: WritesNothing
) -> None:
    setup = await sendable_setup(api, runtime, body="<p>Hi {{name}}</p>")
    variables = {"input": task_input(setup, recipients=None, subject="Hi {{name}}")}
    variables["input"]["recipientFile"] = None
    missing_column = {"input.recipientFile": ("r.csv", b"email\nann@example.org\n", "text/csv")}
    async with assert_writes_nothing():
        (await api.upload(CREATE, variables, missing_column)).error(
            "BAD_USER_INPUT", "recipientFile"
        )

    good = {"input.recipientFile": ("r.csv", b"email,name\nann@example.org,Ann\n", "text/csv")}
    task = (await api.upload(CREATE, variables, good)).ok()["createSendingTask"]
    assert task["status"] == "PREPARING"
    saved = Path(runtime.settings.data_dir) / "uploads" / f"{task['id']}.csv"
    assert saved.read_bytes() == b"email,name\nann@example.org,Ann\n"
    canceled = (await api(CANCEL, {"id": task["id"]})).ok()["cancelSendingTask"]
    assert canceled["status"] == "CANCELED"
    assert not saved.exists()
