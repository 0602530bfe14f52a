"""Template revisions through the API: every edit a revision, reviews per revision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, WritesNothing

FIELDS = """id status revision approvedRevision body reviewComment
  revisions { revision bodyType body params supportUnsubscribe status reviewComment createdAt }"""
CREATE = (
    f"mutation($input: CreateTemplateInput!) {{ createTemplate(input: $input) {{ {FIELDS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $input: UpdateTemplateInput!) "
    f"{{ updateTemplate(id: $id, input: $input) {{ {FIELDS} }} }}"
)
APPROVE = (
    "mutation($id: ID!, $revision: Int, $comment: String) "
    f"{{ approveTemplate(id: $id, revision: $revision, comment: $comment) {{ {FIELDS} }} }}"
)
REJECT = (
    "mutation($id: ID!, $revision: Int, $comment: String!) "
    f"{{ rejectTemplate(id: $id, revision: $revision, comment: $comment) {{ {FIELDS} }} }}"
)
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Template {{ {FIELDS} }} }} }}"
PUBLIC = f"{{ publicTemplates(first: 1) {{ edges {{ node {{ {FIELDS} }} }} }} }}"


async def create(api: Api, body: str = "<p>Hello {{name}}</p>", **keys: Any) -> dict[str, Any]:
    made = await api(
        CREATE, {"input": {"name": "Welcome", "bodyType": "RICH_TEXT", "body": body}}, **keys
    )
    return made.ok()["createTemplate"]  # type: ignore[no-any-return]


async def edit(api: Api, template_id: str, body: str, **keys: Any) -> dict[str, Any]:
    edited = await api(UPDATE, {"id": template_id, "input": {"body": body}}, **keys)
    return edited.ok()["updateTemplate"]  # type: ignore[no-any-return]


def numbers(template: dict[str, Any]) -> list[tuple[int, str]]:
    return [(r["revision"], r["status"]) for r in template["revisions"]]


async def test_non_sensitive_edits_are_approved_at_once(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    made = await create(api)
    assert (made["revision"], made["approvedRevision"]) == (1, 1)
    assert numbers(made) == [(1, "APPROVED")]
    edited = await edit(api, made["id"], "<p>Bye {{name}} and {{code}}</p>")
    assert (edited["revision"], edited["approvedRevision"], edited["status"]) == (2, 2, "APPROVED")
    assert numbers(edited) == [(2, "APPROVED"), (1, "APPROVED")]
    newest, oldest = edited["revisions"]
    assert newest["body"] == edited["body"] == "<p>Bye {{name}} and {{code}}</p>"
    assert newest["params"] == ["name", "code"] and oldest["params"] == ["name"]
    assert oldest["body"] == "<p>Hello {{name}}</p>"  # revisions never change
    renamed = (await api(UPDATE, {"id": made["id"], "input": {"supportUnsubscribe": True}})).ok()
    third = renamed["updateTemplate"]
    assert third["revision"] == 3 and third["revisions"][0]["supportUnsubscribe"] is True
    assert third["revisions"][0]["body"] == newest["body"]


async def test_a_sensitive_edit_waits_while_the_approved_revision_stays(
    api: Api, make_enterprise: Callable[..., Any]
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    operator = api.keys["operator"]
    made = await create(api, key=sensitive.key)
    assert (made["status"], made["revision"], made["approvedRevision"]) == ("APPROVING", 1, None)
    approved = (await api(APPROVE, {"id": made["id"]}, key=operator)).ok()["approveTemplate"]
    assert approved["approvedRevision"] == 1 and approved["status"] == "APPROVED"
    edited = await edit(api, made["id"], "<p>Unreviewed {{name}}</p>", key=sensitive.key)
    assert (edited["status"], edited["revision"], edited["approvedRevision"]) == (
        "APPROVING",
        2,
        1,
    )
    assert numbers(edited) == [(2, "APPROVING"), (1, "APPROVED")]
    assert edited["body"] == "<p>Unreviewed {{name}}</p>"  # the template shows the latest
    rejected = (
        await api(REJECT, {"id": made["id"], "revision": 2, "comment": "no claims"}, key=operator)
    ).ok()["rejectTemplate"]
    assert (rejected["status"], rejected["reviewComment"], rejected["approvedRevision"]) == (
        "REJECTED",
        "no claims",
        1,
    )
    assert rejected["revisions"][0]["reviewComment"] == "no claims"
    third = await edit(api, made["id"], "<p>Fixed {{name}}</p>", key=sensitive.key)
    assert (third["revision"], third["approvedRevision"]) == (3, 1)
    final = (
        await api(APPROVE, {"id": made["id"], "revision": 3, "comment": "ok"}, key=operator)
    ).ok()["approveTemplate"]
    assert (final["status"], final["approvedRevision"]) == ("APPROVED", 3)
    assert numbers(final) == [(3, "APPROVED"), (2, "REJECTED"), (1, "APPROVED")]


async def test_approving_an_older_revision_never_replaces_a_newer_approval(
    api: Api, make_enterprise: Callable[..., Any]
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    operator = api.keys["operator"]
    made = await create(api, key=sensitive.key)
    await edit(api, made["id"], "<p>Second</p>", key=sensitive.key)
    # The operator reviewed revision 2, not 3 that arrived meanwhile: naming it approves 2 only.
    await edit(api, made["id"], "<p>Third</p>", key=sensitive.key)
    second = (await api(APPROVE, {"id": made["id"], "revision": 2}, key=operator)).ok()
    template = second["approveTemplate"]
    assert (template["status"], template["approvedRevision"]) == ("APPROVING", 2)
    await api(APPROVE, {"id": made["id"], "revision": 3}, key=operator)
    first = (await api(APPROVE, {"id": made["id"], "revision": 1}, key=operator)).ok()
    assert first["approveTemplate"]["approvedRevision"] == 3
    assert numbers(first["approveTemplate"]) == [(3, "APPROVED"), (2, "APPROVED"), (1, "APPROVED")]


async def test_review_of_a_revision_not_awaiting_or_missing_is_refused(
    api: Api, make_enterprise: Callable[..., Any], assert_writes_nothing: WritesNothing
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    operator = api.keys["operator"]
    made = await create(api, key=sensitive.key)
    await api(APPROVE, {"id": made["id"]}, key=operator)
    await edit(api, made["id"], "<p>Second</p>", key=sensitive.key)
    async with assert_writes_nothing():
        (await api(APPROVE, {"id": made["id"], "revision": 1}, key=operator)).error(
            "PRECONDITION_FAILED", "revision"
        )
        (await api(APPROVE, {"id": made["id"], "revision": 9}, key=operator)).error(
            "NOT_FOUND", "revision"
        )
        (await api(REJECT, {"id": made["id"], "revision": 0, "comment": "x"}, key=operator)).error(
            "NOT_FOUND", "revision"
        )
        # Enterprises do not review their own revisions.
        (await api(APPROVE, {"id": made["id"], "revision": 2}, key=sensitive.key)).error(
            "FORBIDDEN"
        )


async def test_a_refused_edit_makes_no_revision(
    api: Api, enterprise: EnterpriseHandle, assert_writes_nothing: WritesNothing
) -> None:
    made = await create(api)
    too_many = "".join(f"{{{{p{i}}}}}" for i in range(16))
    async with assert_writes_nothing():
        (await api(UPDATE, {"id": made["id"], "input": {"body": too_many}})).error(
            "BAD_USER_INPUT", "body"
        )
        (await api(UPDATE, {"id": made["id"], "input": {"bodyType": "PLAIN_TEXT"}})).error(
            "BAD_USER_INPUT", "body"
        )
    node = (await api(NODE, {"id": made["id"]})).ok()["node"]
    assert node["revision"] == 1 and numbers(node) == [(1, "APPROVED")]


async def test_another_tenants_template_cannot_be_edited(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Callable[..., Any]
) -> None:
    made = await create(api)
    other = await make_enterprise("Other")
    (await api(UPDATE, {"id": made["id"], "input": {"body": "x"}}, key=other.key)).error(
        "NOT_FOUND", "id"
    )
    node = (await api(NODE, {"id": made["id"]})).ok()["node"]
    assert node["revision"] == 1


async def test_public_templates_have_one_approved_revision(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    node = (await api(PUBLIC)).ok()["publicTemplates"]["edges"][0]["node"]
    assert (node["revision"], node["approvedRevision"]) == (1, 1)
    assert numbers(node) == [(1, "APPROVED")] and node["revisions"][0]["body"] == node["body"]


async def test_deleting_a_template_removes_its_revisions(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    from koomsg.testing.plugin import count_rows

    made = await create(api)
    await edit(api, made["id"], "<p>Second</p>")
    assert await count_rows(runtime, "template_revision") == 2
    (await api("mutation($id: ID!) { deleteTemplate(id: $id) }", {"id": made["id"]})).ok()
    assert await count_rows(runtime, "template_revision") == 0
