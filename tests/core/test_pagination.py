"""Cursors: only one this list returned moves a page on; anything else is BAD_USER_INPUT."""

from __future__ import annotations

import base64

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.ids import new_id
from koomsg.core.pagination import decode_cursor, encode_cursor
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup

TEMPLATES = "query($after: String) { templates(first: 1, after: $after) { edges { cursor } } }"
TASKS = "query($after: String) { sendingTasks(first: 1, after: $after) { edges { cursor } } }"


def test_a_cursor_round_trips_within_its_list_only() -> None:
    identifier = new_id("tpl")
    cursor = encode_cursor(identifier, "template")
    assert decode_cursor(cursor, "template") == identifier
    for listing, bad in [
        ("sending_task", cursor),  # another list's
        ("template", "not base64 at all!"),
        ("template", base64.urlsafe_b64encode(b"tpl_1").decode()),  # made up
        ("template", "A" * 1000),
    ]:
        with pytest.raises(BadInput) as raised:
            decode_cursor(bad, listing)
        assert raised.value.field == "after"


async def test_foreign_and_forged_cursors_over_the_api(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    await sendable_setup(api, runtime)
    await sendable_setup(api, runtime, template_name="Second", domain="b.example.com")
    [edge] = (await api(TEMPLATES, {"after": None})).ok()["templates"]["edges"]
    assert (await api(TEMPLATES, {"after": edge["cursor"]})).ok()["templates"]["edges"]
    (await api(TASKS, {"after": edge["cursor"]})).error("BAD_USER_INPUT", "after")
    forged = base64.urlsafe_b64encode(b"template:tpl_' OR 1=1 --").decode()
    (await api(TEMPLATES, {"after": forged})).error("BAD_USER_INPUT", "after")


DETAILS = """query($from: DateTime!, $to: DateTime!) {
  sendingDetails(filter: {createdFrom: $from, createdTo: $to}) { totalCount } }"""


async def test_a_date_that_does_not_parse_names_its_field(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    answer = await api(DETAILS, {"from": "yesterday", "to": "2026-12-07T00:00:00Z"})
    answer.error("BAD_USER_INPUT", "createdFrom")
    inline = (
        '{ sendingDetails(filter: {createdFrom: "2026-13-45", createdTo: "x"}) { totalCount } }'
    )
    (await api(inline)).error("BAD_USER_INPUT")
