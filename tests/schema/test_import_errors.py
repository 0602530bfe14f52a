"""importErrors is paged: first/after over a task's rejected rows, in file order."""

from __future__ import annotations

from typing import Any

from koomsg.core.recipients.importer import run_import
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup

CREATE = "mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id } }"
ERRORS = """query($first: Int, $after: String) { sendingTasks { edges { node {
  importErrorCount importErrors(first: $first, after: $after) { row value reason cursor } } } } }"""


async def task_with_bad_rows(api: Api, runtime: Runtime, bad: int) -> str:
    setup = await sendable_setup(api, runtime)
    lines = ["email", "ann@example.org", *(f"bad-{i}" for i in range(bad))]
    variables: dict[str, Any] = {
        "input": {
            "name": "Import",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipientFile": None,
        }
    }
    files = {"input.recipientFile": ("r.csv", ("\n".join(lines) + "\n").encode(), "text/csv")}
    task_id = str((await api.upload(CREATE, variables, files)).ok()["createSendingTask"]["id"])
    assert await run_import(runtime, task_id=task_id) is not None
    return task_id


async def errors_page(api: Api, **variables: Any) -> dict[str, Any]:
    node = (await api(ERRORS, variables)).ok()["sendingTasks"]["edges"][0]["node"]
    return node  # type: ignore[no-any-return]


async def test_pages_walk_every_error_once_in_file_order(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    await task_with_bad_rows(api, runtime, 25)
    first = await errors_page(api)
    assert first["importErrorCount"] == 25
    assert [e["row"] for e in first["importErrors"]] == list(range(3, 23))  # default: 20
    rows: list[int] = []
    after = None
    while True:
        page = (await errors_page(api, first=10, after=after))["importErrors"]
        if not page:
            break
        rows += [e["row"] for e in page]
        after = page[-1]["cursor"]
    assert rows == list(range(3, 28))
    assert first["importErrors"][0]["value"] == "bad-0"


async def test_bad_page_arguments_are_bad_input(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    await task_with_bad_rows(api, runtime, 2)
    (await api(ERRORS, {"first": 101})).error("BAD_USER_INPUT", "first")
    (await api(ERRORS, {"after": "forged"})).error("BAD_USER_INPUT", "after")
    tasks_cursor = (await api("{ sendingTasks { edges { cursor } } }")).ok()
    foreign = tasks_cursor["sendingTasks"]["edges"][0]["cursor"]
    (await api(ERRORS, {"after": foreign})).error("BAD_USER_INPUT", "after")
