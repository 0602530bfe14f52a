"""The leaks issue 13 names, one by one, as a frontend would hit them over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle
from tests.schema.field_access_support import Tenant, root_arguments, tenant_with_everything
from tests.schema.iam_support import doc, full_access_policy_id, member
from tests.schema.test_task_progress import next_message, subscribe, ws_url  # noqa: F401

TASK_TEMPLATES = "{ sendingTasks { edges { node { name template { body } } } } }"
DOMAIN_RECORDS = """{ senderAddresses { edges { node { address
    domain { name records { expectedValue } } } } } }"""


def details(tenant: Tenant, selection: str) -> str:
    return f"{{ sendingDetails{root_arguments(tenant)['sendingDetails']} {{ edges {{ node {{ {selection} }} }} }} }}"


async def test_denied_templates_stay_out_of_tasks_and_details(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    tenant = await tenant_with_everything(api, runtime)
    key = (
        await member(
            api, "no-tpl", doc("Allow", "KooMessage:*:*"), doc("Deny", "KooMessage:template:*")
        )
    ).secret
    answer = await api(TASK_TEMPLATES, key=key)
    error = answer.error("FORBIDDEN")
    assert error["path"] == ["sendingTasks", "edges", 0, "node", "template"]
    assert "KooMessage:template:list" in error["message"] and "no-tpl-p1" in error["message"]
    # The contract makes SendingTask.template (and every parent) non-null: the null goes up.
    assert answer.data is None and "Hello</p>" not in str(answer.body)
    # SendingDetail.template is nullable: only it goes; the rest of each row stays.
    rows = await api(details(tenant, "subject sender template { body }"), key=key)
    assert rows.error("FORBIDDEN")["path"] == ["sendingDetails", "edges", 0, "node", "template"]
    [row] = [e["node"] for e in rows.data["sendingDetails"]["edges"]]
    assert row == {"subject": "Hello", "sender": row["sender"], "template": None}
    # The same user still reads what it is allowed at the same places.
    (await api("{ sendingTasks { edges { node { name counts { total } } } } }", key=key)).ok()
    # The root key reads it all.
    assert (await api(TASK_TEMPLATES)).ok()["sendingTasks"]["edges"][0]["node"]["template"]


async def test_denied_domains_hide_their_records_behind_addresses(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    await tenant_with_everything(api, runtime)
    key = (await member(api, "no-dom", doc("Allow", "KooMessage:senderAddress:list"))).secret
    answer = await api(DOMAIN_RECORDS, key=key)
    error = answer.error("FORBIDDEN")
    assert error["path"] == ["senderAddresses", "edges", 0, "node", "domain"]
    assert "KooMessage:senderDomain:list" in error["message"]
    assert answer.data is None and "DKIM1" not in str(answer.body)
    assert (await api("{ senderAddresses { edges { node { address } } } }", key=key)).ok()
    records = (await api(DOMAIN_RECORDS)).ok()["senderAddresses"]["edges"][0]["node"]["domain"]
    assert any("DKIM1" in r["expectedValue"] for r in records["records"])


async def test_tasks_and_senders_need_their_own_actions(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    tenant = await tenant_with_everything(api, runtime)
    key = (await member(api, "details-only", doc("Allow", "KooMessage:sendingDetail:list"))).secret
    rows = await api(details(tenant, "subject task { name } template { name }"), key=key)
    paths = sorted(e["path"][-1] for e in rows.errors)
    assert paths == ["task", "template"] and {e["extensions"]["code"] for e in rows.errors} == {
        "FORBIDDEN"
    }
    [row] = [e["node"] for e in rows.data["sendingDetails"]["edges"]]
    assert row == {"subject": "Hello", "task": None, "template": None}
    tasks_only = (
        await member(api, "tasks-only", doc("Allow", "KooMessage:devSendTask:list"))
    ).secret
    sender = await api("{ sendingTasks { edges { node { sender { address } } } } }", key=tasks_only)
    assert sender.error("FORBIDDEN")["path"][-1] == "sender"


async def test_iam_objects_do_not_leak_through_each_other(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    full = await full_access_policy_id(api)
    await member(api, "admin", policy_ids=[full])
    users_only = (await member(api, "users-only", doc("Allow", "KooMessage:iamUser:list"))).secret
    answer = await api(
        "{ iamUsers { name groups { name policies { document } } } }", key=users_only
    )
    assert answer.error("FORBIDDEN")["path"] == ["iamUsers", 0, "groups"]
    groups_only = (
        await member(api, "groups-only", doc("Allow", "KooMessage:iamGroup:list"))
    ).secret
    for nested in ("users { name }", "policies { document }"):
        answer = await api(f"{{ iamGroups {{ name {nested} }} }}", key=groups_only)
        assert answer.error("FORBIDDEN")["path"][-1] == nested.split()[0]
        assert "FullAccess" not in str(answer.body)
    # node(id:) is a root field: it checks the id's kind, and nested fields still theirs.
    admin_group = (await api("{ iamGroups { id name } }")).ok()["iamGroups"][0]["id"]
    fragment = "query($id: ID!) { node(id: $id) { id ... on IamGroup { policies { name } } } }"
    answer = await api(fragment, {"id": admin_group}, key=groups_only)
    assert answer.error("FORBIDDEN")["path"] == ["node", "policies"]
    assert answer.data == {"node": None}


async def test_mutation_answers_are_checked_too(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    await tenant_with_everything(api, runtime)
    creator = (
        await member(api, "dom-creator", doc("Allow", "KooMessage:senderDomain:create"))
    ).secret
    made = await api(
        'mutation { createSenderDomain(input: {name: "new.example.com"}) { id records { name } } }',
        key=creator,
    )
    assert made.error("FORBIDDEN")["path"] == ["createSenderDomain", "records"]


@contextmanager
def policy_loads(runtime: Runtime) -> Iterator[list[str]]:
    """The statements that read a user's policies through its groups."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "iam_group_member" in statement and "iam_group_policy" in statement:
            seen.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_policies_are_read_once_per_request(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    full = await full_access_policy_id(api)
    reader = await member(api, "reader", policy_ids=[full])
    for name in ("a", "b", "c"):
        await member(api, name, doc("Allow", "KooMessage:template:list"))
    query = (
        "{ iamGroups { users { groups { policies { name } } } policies { name } } iamUsers { id } }"
    )
    with policy_loads(runtime) as loads:
        answer = (await api(query, key=reader.secret)).ok()
    assert len(answer["iamGroups"]) == 4
    assert len(loads) == 1, loads


async def test_subscription_pushes_are_checked_too(
    api: Api,
    enterprise: EnterpriseHandle,
    runtime: Runtime,
    ws_url: str,  # noqa: F811
) -> None:
    tenant = await tenant_with_everything(api, runtime)
    key = (await member(api, "watcher", doc("Allow", "KooMessage:devSendTask:list"))).secret
    query = "subscription($id: ID!) { taskProgress(id: $id) { id template { body } } }"
    socket_ = await subscribe(ws_url, key, tenant.task_id, query)
    try:
        pushed = await next_message(socket_)
    finally:
        await socket_.close()
    [error] = pushed["payload"]["errors"]
    assert error["path"] == ["taskProgress", "template"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert pushed["payload"]["data"] is None
