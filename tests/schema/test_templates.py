from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from koomsg.core.errors import Conflict
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.templates import service as templates_service
from koomsg.core.templates.models import Template as TemplateRow
from koomsg.core.templates.review import review_history
from koomsg.core.templates.sanitize import MAX_BODY_BYTES
from koomsg.plugins import hookimpl
from koomsg.plugins.types import PublicTemplate, ReviewDecision, ReviewOutcome
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows

FIELDS = "id name bodyType body params supportUnsubscribe public status reviewComment createdAt"
CREATE = (
    f"mutation($input: CreateTemplateInput!) {{ createTemplate(input: $input) {{ {FIELDS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $input: UpdateTemplateInput!) "
    f"{{ updateTemplate(id: $id, input: $input) {{ {FIELDS} }} }}"
)
COPY = f"mutation($id: ID!, $name: String) {{ copyTemplate(id: $id, name: $name) {{ {FIELDS} }} }}"
DELETE = "mutation($id: ID!) { deleteTemplate(id: $id) }"
LIST = f"""query($filter: TemplateFilter, $first: Int, $after: String) {{
  templates(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {FIELDS} }} }} }} }}"""
PUBLIC = f"""query($filter: TemplateFilter, $first: Int, $after: String) {{
  publicTemplates(filter: $filter, first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {FIELDS} }} }} }} }}"""
PREVIEW = """query($id: ID!, $params: JSON, $subject: String) {
  previewTemplate(id: $id, params: $params, subject: $subject) { subject html text } }"""
APPROVE = """mutation($id: ID!, $comment: String) {
  approveTemplate(id: $id, comment: $comment) { id status reviewComment } }"""
REJECT = """mutation($id: ID!, $comment: String!) {
  rejectTemplate(id: $id, comment: $comment) { id status reviewComment } }"""
AWAITING = (
    "query { templatesAwaitingReview { totalCount edges { node { id enterpriseId status } } } }"
)


def rich(name: str = "Welcome", body: str = "<p>Hi {{name}}</p>", **extra: Any) -> dict[str, Any]:
    return {"input": {"name": name, "bodyType": "RICH_TEXT", "body": body, **extra}}


async def create(api: Api, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return (await api(CREATE, rich(**kwargs), key=key)).ok()["createTemplate"]  # type: ignore[no-any-return]


async def test_create_sanitises_and_approves_for_a_non_sensitive_enterprise(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    made = await create(
        api, body='<p onclick="x()">Hi {{ name }}, code {{code}}</p><script>alert(1)</script>'
    )
    assert made["status"] == "APPROVED" and made["public"] is False
    assert made["body"] == "<p>Hi {{name}}, code {{code}}</p>"
    assert made["params"] == ["name", "code"]
    assert made["id"].startswith("tpl_")
    node = (
        await api(
            "query($id: ID!) { node(id: $id) { ... on Template { name } } }", {"id": made["id"]}
        )
    ).ok()
    assert node["node"] == {"name": "Welcome"}


async def test_sensitive_enterprise_waits_for_an_operator(
    api: Api, make_enterprise: Callable[..., Any], runtime: Runtime
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    made = await create(api, key=sensitive.key)
    assert made["status"] == "APPROVING"
    awaiting = (await api(AWAITING, key=api.keys["operator"])).ok()["templatesAwaitingReview"]
    assert [e["node"]["id"] for e in awaiting["edges"]] == [made["id"]]
    assert awaiting["edges"][0]["node"]["enterpriseId"] == sensitive.id
    # Enterprises cannot review, operators cannot list enterprise templates.
    (await api(AWAITING, key=sensitive.key)).error("FORBIDDEN")
    (await api(APPROVE, {"id": made["id"]}, key=sensitive.key)).error("FORBIDDEN")

    approved = (
        await api(APPROVE, {"id": made["id"], "comment": "fine"}, key=api.keys["operator"])
    ).ok()
    assert approved["approveTemplate"] == {
        "id": made["id"],
        "status": "APPROVED",
        "reviewComment": "fine",
    }
    (await api(APPROVE, {"id": made["id"]}, key=api.keys["operator"])).error("PRECONDITION_FAILED")
    assert (await api(AWAITING, key=api.keys["operator"])).ok()["templatesAwaitingReview"][
        "totalCount"
    ] == 0
    # The policy's hold and the operator's approval are both on record.
    assert await count_rows(runtime, "template_review") == 2


async def test_operator_rejects_with_a_comment(
    api: Api, make_enterprise: Callable[..., Any], runtime: Runtime
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    made = await create(api, key=sensitive.key)
    operator = api.keys["operator"]
    before = await count_rows(runtime, "template_review")
    (await api(REJECT, {"id": made["id"], "comment": "  "}, key=operator)).error(
        "BAD_USER_INPUT", "comment"
    )
    assert await count_rows(runtime, "template_review") == before
    rejected = (
        await api(REJECT, {"id": made["id"], "comment": "misleading offer"}, key=operator)
    ).ok()
    assert rejected["rejectTemplate"]["status"] == "REJECTED"
    listed = (await api(LIST, {"filter": {"status": "REJECTED"}}, key=sensitive.key)).ok()[
        "templates"
    ]
    assert listed["edges"][0]["node"]["reviewComment"] == "misleading offer"
    (await api(REJECT, {"id": "tpl_nope", "comment": "x"}, key=operator)).error("NOT_FOUND", "id")


async def test_edit_goes_back_to_review(api: Api, make_enterprise: Callable[..., Any]) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    made = await create(api, key=sensitive.key)
    (await api(APPROVE, {"id": made["id"]}, key=api.keys["operator"])).ok()
    edited = (
        await api(
            UPDATE, {"id": made["id"], "input": {"body": "<p>{{a}} {{b}}</p>"}}, key=sensitive.key
        )
    ).ok()["updateTemplate"]
    assert (
        edited["status"] == "APPROVING"
        and edited["params"] == ["a", "b"]
        and edited["name"] == "Welcome"
    )
    (
        await api(
            UPDATE, {"id": made["id"], "input": {"bodyType": "PLAIN_TEXT"}}, key=sensitive.key
        )
    ).error("BAD_USER_INPUT", "body")


class RejectEverything:
    """A partner's policy: registered after the built-in one, so it answers first."""

    @hookimpl
    def koomsg_review_template(self, template: Any, enterprise: Any) -> ReviewDecision:
        return ReviewDecision(
            ReviewOutcome.REJECT,
            f"no promotions allowed in {template.name}",
            reviewer="acme-policy",
        )


async def test_a_plugin_policy_overrides_the_built_in_one(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    plugin = RejectEverything()
    runtime.plugins.register(plugin, name="test-reject-everything")
    try:
        made = await create(api, name="Promo")
    finally:
        runtime.plugins.unregister(plugin)
    assert made["status"] == "REJECTED"
    assert made["reviewComment"] == "no promotions allowed in Promo"
    assert (await create(api, name="After"))["status"] == "APPROVED"


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        (rich(name=""), "name"),
        (rich(name="x" * 129), "name"),
        (rich(body=None), "body"),
        (rich(body="   "), "body"),
        (rich(body="<p>{{1a}}</p>"), "body"),
        (rich(body="<p>{{a b}}</p>"), "body"),
        (rich(body=" ".join(f"{{{{p{i}}}}}" for i in range(16))), "body"),
        (rich(body="<div>" * 300), "body"),
    ],
)
async def test_bad_input_writes_nothing(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, variables: dict[str, Any], field: str
) -> None:
    before = (await count_rows(runtime, "template"), await count_rows(runtime, "template_review"))
    (await api(CREATE, variables)).error("BAD_USER_INPUT", field)
    assert (
        await count_rows(runtime, "template"),
        await count_rows(runtime, "template_review"),
    ) == before


async def test_malformed_placeholder_names_its_position(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    error = (await api(CREATE, rich(body="<p>ok</p>\n<p>{{ }}</p>"))).error(
        "BAD_USER_INPUT", "body"
    )
    assert "line 2" in error["message"]


async def test_boundary_title_and_fifteen_params_pass(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    body = " ".join(f"{{{{p{i}}}}}" for i in range(15))
    made = await create(api, name="x" * 128, body=body)
    assert len(made["params"]) == 15


async def test_html_file_upload(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> None:
    variables = rich(body="<p>replaced</p>", htmlFile=None)
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Grüße {{name}}</p></body></html>'
    made = (
        await api.upload(
            CREATE, variables, {"input.htmlFile": ("t.html", page.encode("latin-1"), "text/html")}
        )
    ).ok()["createTemplate"]
    assert made["body"] == "<p>Grüße {{name}}</p>" and made["params"] == ["name"]

    before = await count_rows(runtime, "template")
    too_big = b"<p>" + b"a" * (MAX_BODY_BYTES + 1 - 3)
    assert len(too_big) == MAX_BODY_BYTES + 1
    (
        await api.upload(CREATE, variables, {"input.htmlFile": ("big.html", too_big, "text/html")})
    ).error("BAD_USER_INPUT", "htmlFile")
    plain = {"input": {"name": "P", "bodyType": "PLAIN_TEXT", "htmlFile": None}}
    (
        await api.upload(CREATE, plain, {"input.htmlFile": ("t.html", b"<p>x</p>", "text/html")})
    ).error("BAD_USER_INPUT", "htmlFile")
    (
        await api.upload(
            CREATE, variables, {"input.htmlFile": ("t.html", "é".encode("latin-1"), "text/html")}
        )
    ).error("BAD_USER_INPUT", "htmlFile")
    assert await count_rows(runtime, "template") == before


async def test_list_filters_and_pages(api: Api, enterprise: EnterpriseHandle) -> None:
    made = [await create(api, name=f"Letter {i}") for i in range(3)]
    await create(api, name="Other")
    page = (await api(LIST, {"filter": {"name": "letter"}, "first": 2})).ok()["templates"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["name"] for e in page["edges"]] == ["Letter 2", "Letter 1"]
    rest = (
        await api(LIST, {"filter": {"name": "letter"}, "after": page["pageInfo"]["endCursor"]})
    ).ok()
    assert [e["node"]["name"] for e in rest["templates"]["edges"]] == ["Letter 0"]
    by_id = (await api(LIST, {"filter": {"id": made[1]["id"]}})).ok()["templates"]
    assert by_id["totalCount"] == 1
    created_at = made[0]["createdAt"]
    ranged = (await api(LIST, {"filter": {"createdFrom": created_at, "status": "APPROVED"}})).ok()
    assert ranged["templates"]["totalCount"] == 4
    none = (await api(LIST, {"filter": {"createdTo": "2000-01-01T00:00:00+00:00"}})).ok()
    assert none["templates"]["totalCount"] == 0


async def test_another_tenants_template_is_not_found(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Callable[..., Any], runtime: Runtime
) -> None:
    other = await make_enterprise("Other")
    theirs = await create(api, key=other.key, name="Theirs")
    assert (await api(LIST)).ok()["templates"]["totalCount"] == 0
    (await api(PREVIEW, {"id": theirs["id"]})).error("NOT_FOUND", "id")
    (await api(DELETE, {"id": theirs["id"]})).error("NOT_FOUND", "id")
    (await api(COPY, {"id": theirs["id"]})).error("NOT_FOUND", "id")
    (await api(UPDATE, {"id": theirs["id"], "input": {"name": "mine"}})).error("NOT_FOUND", "id")
    (await api("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]})).error("NOT_FOUND")
    async with runtime.db.session() as session:
        from koomsg.core.errors import NotFound
        from koomsg.core.iam.keys import authenticate

        principal = await authenticate(session, api.key)
        with pytest.raises(NotFound) as caught:
            await templates_service.get_sendable_template(
                session, principal=principal, template_id=theirs["id"]
            )
        assert caught.value.field == "templateId"


async def test_only_approved_templates_are_sendable(
    api: Api, make_enterprise: Callable[..., Any], runtime: Runtime
) -> None:
    from koomsg.core.errors import PreconditionFailed
    from koomsg.core.iam.keys import authenticate

    sensitive = await make_enterprise("Pharma", sensitive=True)
    made = await create(api, key=sensitive.key)
    async with runtime.db.session() as session:
        principal = await authenticate(session, sensitive.key)
        with pytest.raises(PreconditionFailed) as caught:
            await templates_service.get_sendable_template(
                session, principal=principal, template_id=made["id"]
            )
        assert caught.value.field == "templateId"
    (await api(APPROVE, {"id": made["id"]}, key=api.keys["operator"])).ok()
    async with runtime.db.session() as session:
        row = await templates_service.get_sendable_template(
            session, principal=principal, template_id=made["id"]
        )
        assert row.id == made["id"]


async def test_preview_fills_samples_escapes_and_shows_the_unsubscribe_link(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    made = await create(
        api,
        body='<p>Hi {{name}}, your code is {{code}}</p><a href="{{link}}">go</a>',
        supportUnsubscribe=True,
    )
    shown = (
        await api(
            PREVIEW,
            {"id": made["id"], "params": {"name": "<b>Ann</b>"}, "subject": "Code for {{ name }}"},
        )
    ).ok()["previewTemplate"]
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;, your code is [code]" in shown["html"]
    assert shown["subject"] == "Code for <b>Ann</b>"
    assert "Hi <b>Ann</b>, your code is [code]" in shown["text"]
    assert (
        "http://127.0.0.1:8000/u/preview" in shown["html"]
        and "http://127.0.0.1:8000/u/preview" in shown["text"]
    )
    (await api(PREVIEW, {"id": made["id"], "subject": "Hi {{nope}}"})).error(
        "BAD_USER_INPUT", "subject"
    )
    (await api(PREVIEW, {"id": made["id"], "params": {"nope": "x"}})).error(
        "BAD_USER_INPUT", "params"
    )
    (await api(PREVIEW, {"id": made["id"], "params": ["x"]})).error("BAD_USER_INPUT", "params")


async def test_public_templates_are_listed_previewed_and_copied(
    api: Api, make_enterprise: Callable[..., Any]
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    api.key = sensitive.key
    listed = (await api(PUBLIC)).ok()["publicTemplates"]
    nodes = [e["node"] for e in listed["edges"]]
    ids = {n["id"] for n in nodes}
    assert {
        "pub_welcome",
        "pub_verification_code",
        "pub_password_reset",
        "pub_order_notice",
        "pub_newsletter",
    } <= ids
    assert all(n["public"] and n["status"] == "APPROVED" for n in nodes)
    welcome = next(n for n in nodes if n["id"] == "pub_welcome")
    assert 'width="600"' in welcome["body"] and "name" in welcome["params"]

    filtered = (await api(PUBLIC, {"filter": {"name": "PASSWORD"}})).ok()["publicTemplates"]
    assert [e["node"]["id"] for e in filtered["edges"]] == ["pub_password_reset"]
    first = (await api(PUBLIC, {"first": 2})).ok()["publicTemplates"]
    second = (await api(PUBLIC, {"first": 2, "after": first["pageInfo"]["endCursor"]})).ok()[
        "publicTemplates"
    ]
    assert len(second["edges"]) == 2 and second["edges"][0]["node"]["id"] not in {
        e["node"]["id"] for e in first["edges"]
    }

    preview = (
        await api(PREVIEW, {"id": "pub_verification_code", "params": {"code": "123456"}})
    ).ok()
    assert "123456" in preview["previewTemplate"]["html"]
    assert preview["previewTemplate"]["subject"] == "Your [company] verification code: 123456"

    copy = (await api(COPY, {"id": "pub_welcome"})).ok()["copyTemplate"]
    assert copy["name"] == "Welcome (copy)" and copy["public"] is False
    assert copy["status"] == "APPROVING" and copy["body"] == welcome["body"]
    named = (await api(COPY, {"id": copy["id"], "name": "Mine"})).ok()["copyTemplate"]
    assert named["name"] == "Mine"
    (await api(COPY, {"id": "pub_nope"})).error("NOT_FOUND", "id")
    (await api(DELETE, {"id": "pub_welcome"})).error("NOT_FOUND", "id")


async def test_delete_and_the_in_use_conflict(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    made = await create(api)

    async def guard(session: Any, template_id: str) -> None:
        raise Conflict("the template is used by task tsk_TEST (SENDING)", field="id")

    # Guards (koomsg.core.flows lists the real ones) run before the template is deleted.
    root = Principal(PrincipalKind.ENTERPRISE_ROOT, "Acme", "key", enterprise_id=enterprise.id)
    with pytest.raises(Conflict, match="tsk_TEST"):
        async with runtime.db.transaction() as session:
            await templates_service.delete_template(
                session, principal=root, template_id=made["id"], guards=[guard]
            )
    assert await count_rows(runtime, "template") == 1
    assert (await api(DELETE, {"id": made["id"]})).ok()["deleteTemplate"] == made["id"]
    assert await count_rows(runtime, "template") == 0
    (await api(DELETE, {"id": made["id"]})).error("NOT_FOUND", "id")


class ExtraPublicTemplates:
    @hookimpl
    def koomsg_public_templates(self) -> list[PublicTemplate]:
        return [
            PublicTemplate(
                key="welcome", name="Partner welcome", body_type="PLAIN_TEXT", body="Hey {{who}}"
            ),
            PublicTemplate(
                key="invoice", name="Invoice", body_type="RICH_TEXT", body="<p>{{amount}}</p>"
            ),
            PublicTemplate(key="broken", name="Broken", body_type="PLAIN_TEXT", body="{{1x}}"),
        ]


async def test_plugins_add_and_replace_public_templates(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    plugin = ExtraPublicTemplates()
    runtime.plugins.register(plugin, name="test-extra-public")
    try:
        listed = (await api(PUBLIC)).ok()["publicTemplates"]
    finally:
        runtime.plugins.unregister(plugin)
    nodes = {e["node"]["id"]: e["node"] for e in listed["edges"]}
    assert nodes["pub_welcome"]["name"] == "Partner welcome" and nodes["pub_welcome"]["params"] == [
        "who"
    ]
    assert nodes["pub_invoice"]["params"] == ["amount"]
    assert "pub_broken" not in nodes  # an invalid offer is skipped, not fatal


async def test_review_decisions_record_who_and_when(
    api: Api, make_enterprise: Callable[..., Any], runtime: Runtime
) -> None:
    sensitive = await make_enterprise("Pharma", sensitive=True)
    made = await create(api, key=sensitive.key)
    (await api(APPROVE, {"id": made["id"]}, key=api.keys["operator"])).ok()
    async with runtime.db.session() as session:
        history = await review_history(session, template_id=made["id"])
        row = await session.get(TemplateRow, made["id"])
    assert [(h.decision, h.reviewer_kind, h.reviewer) for h in history] == [
        ("APPROVING", "POLICY", "policy"),
        ("APPROVED", "OPERATOR", "test-operator"),
    ]
    assert row is not None and row.reviewed_by == "test-operator" and row.reviewed_at is not None


async def test_public_templates_are_nodes_too(api: Api, enterprise: EnterpriseHandle) -> None:
    listed = (await api("{ publicTemplates { edges { node { id name } } } }")).ok()
    first = listed["publicTemplates"]["edges"][0]["node"]
    query = "query($id: ID!) { node(id: $id) { id ... on Template { name public status } } }"
    found = (await api(query, {"id": first["id"]})).ok()["node"]
    assert found == {"id": first["id"], "name": first["name"], "public": True, "status": "APPROVED"}
    (await api(query, {"id": "pub_no_such_template"})).error("NOT_FOUND", "id")


async def test_a_preview_that_would_answer_megabytes_is_refused_short(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    """A 50 KB template of 10 000 {{p}} with a 1 KB value used to answer 40 MB."""
    made = await create(api, body="<p>" + "{{p}}" * 10_000 + "</p>")
    answer = await api(PREVIEW, {"id": made["id"], "params": {"p": "x" * 1024}})
    error = answer.error("BAD_USER_INPUT", "params")
    assert "at most 2 MiB" in error["message"] and len(str(answer.body)) < 1000
    (await api(PREVIEW, {"id": made["id"], "params": {"p": "x" * 1025}})).error(
        "BAD_USER_INPUT", "params"
    )
    assert (await api(PREVIEW, {"id": made["id"], "params": {"p": "x"}})).ok()
