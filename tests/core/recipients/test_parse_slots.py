"""At most N recipient-file parses at once, per enterprise and in total."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput
from koomsg.core.recipients import importer
from koomsg.core.recipients.parse_slots import HEADER_READS, HeaderReads
from koomsg.core.tasks.models import SendingTask, SendingType, TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup


@pytest.fixture
def koomsg_env() -> dict[str, str]:
    return {"KOOMSG_MAX_PARSES_PER_ENTERPRISE": "1", "KOOMSG_MAX_PARSES": "2"}


async def new_task(runtime: Runtime, enterprise_id: str, folder: Path) -> str:
    path = folder / f"{enterprise_id}-{utcnow().timestamp()}.csv"
    path.write_text("email\nann@example.org\n")
    task = SendingTask(
        enterprise_id=enterprise_id,
        name="spring",
        subject="Hello",
        template_id="tpl_1",
        template_name="welcome",
        body_type="PLAIN_TEXT",
        body="Hi",
        params=[],
        sender_address_id="adr_1",
        sender_domain_id="dom_1",
        sender_address="news@shop.example",
        sending_type=SendingType.NOW,
        recipient_file=str(path),
        recipient_file_kind="csv",
    )
    async with runtime.db.transaction() as session:
        session.add(task)
    return task.id


async def hold(runtime: Runtime, task_id: str, *, held: bool = True) -> None:
    """Stand for an import running elsewhere (its claim live) or a dead one (expired)."""
    until = utcnow() + timedelta(seconds=60 if held else -1)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(SendingTask)
            .where(SendingTask.id == task_id)  # type: ignore[arg-type]
            .values(import_claimed_until=until)
        )


async def status(runtime: Runtime, task_id: str) -> str:
    async with runtime.db.session() as session:
        task = await session.get(SendingTask, task_id)
        assert task is not None
        return str(task.status)


async def test_imports_wait_for_a_slot_per_enterprise_and_in_total(
    runtime: Runtime, make_enterprise: Any, tmp_path: Path
) -> None:
    one, two, three = [(await make_enterprise(name)).id for name in ("One", "Two", "Three")]
    running = await new_task(runtime, one, tmp_path)
    await hold(runtime, running)
    waiting = await new_task(runtime, one, tmp_path)
    assert await importer.run_import(runtime, task_id=waiting) is None  # One's slot is taken
    assert await status(runtime, waiting) == TaskStatus.PREPARING
    assert waiting in await importer.expired_imports(runtime.db, now=utcnow() + timedelta(hours=1))
    other = await new_task(runtime, two, tmp_path)
    report = await importer.run_import(runtime, task_id=other)  # Two has a slot of its own
    assert report is not None and report.status
    busy = await new_task(runtime, two, tmp_path)
    await hold(runtime, busy)
    third = await new_task(runtime, three, tmp_path)
    assert await importer.run_import(runtime, task_id=third) is None  # 2 of 2 in total
    await hold(runtime, running, held=False)  # that import's worker died: its slot frees
    assert await importer.run_import(runtime, task_id=waiting) is not None
    assert await importer.run_import(runtime, task_id=third) is not None


async def test_header_reads_refuse_per_enterprise_and_queue_in_total() -> None:
    reads = HeaderReads(per_enterprise=1, total=1)
    entered: list[str] = []

    async def read(enterprise: str) -> None:
        async with reads.slot(enterprise):
            entered.append(enterprise)

    async with reads.slot("ent_a"):
        with pytest.raises(BadInput) as refused:
            await read("ent_a")
        assert refused.value.field == "recipientFile"
        queued = asyncio.create_task(read("ent_b"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert entered == []  # the one service-wide slot is held
    await queued
    assert entered == ["ent_b"]
    await read("ent_a")  # the slot came back


async def test_create_sending_task_takes_a_header_slot(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, assert_writes_nothing: Any
) -> None:
    setup = await sendable_setup(api, runtime)
    create = "mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id } }"
    variables = {
        "input": {
            "name": "Import",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipientFile": None,
        }
    }
    files = {"input.recipientFile": ("r.csv", b"email\nann@example.org\n", "text/csv")}
    limits = (HEADER_READS.per_enterprise, HEADER_READS.total)
    async with HEADER_READS.slot(enterprise.id):  # another upload of Acme being read
        async with assert_writes_nothing("sending_task"):
            response = await api.upload(create, variables, files)
        error = response.error("BAD_USER_INPUT", "recipientFile")
        assert "KOOMSG_MAX_PARSES_PER_ENTERPRISE" in error["message"]
    assert (HEADER_READS.per_enterprise, HEADER_READS.total) == limits
    (await api.upload(create, variables, files)).ok()
