from __future__ import annotations

from typing import Any

from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows

CREATE_USER = "mutation($n: String!) { createIamUser(name: $n) { id name createdAt } }"
CREATE_GROUP = "mutation($n: String!) { createIamGroup(name: $n) { id name } }"
ADD = "mutation($u: ID!, $g: ID!) { addUserToGroup(userId: $u, groupId: $g) { id users { name } } }"
CREATE_POLICY = "mutation($n: String!, $d: JSON!) { createPolicy(name: $n, document: $d) { id name system document } }"
ATTACH = "mutation($g: ID!, $p: ID!) { attachPolicy(groupId: $g, policyId: $p) { id policies { name } } }"
CREATE_KEY = "mutation($u: ID!) { createAccessKey(userId: $u) { id secret createdAt } }"
LIST_USERS = "{ iamUsers { id name groups { name } } }"


def doc(effect: str, *actions: str) -> dict[str, Any]:
    return {"Version": "1.1", "Statement": [{"Effect": effect, "Action": list(actions)}]}


async def user_with_policies(api: Api, name: str, *groups: list[dict[str, Any]]) -> str:
    """An IAM user in one group per entry of ``groups``, each with those policy documents."""
    user = (await api(CREATE_USER, {"n": name})).ok()["createIamUser"]
    for index, documents in enumerate(groups):
        group = (await api(CREATE_GROUP, {"n": f"{name}-g{index}"})).ok()["createIamGroup"]
        (await api(ADD, {"u": user["id"], "g": group["id"]})).ok()
        for number, document in enumerate(documents):
            policy = (
                await api(CREATE_POLICY, {"n": f"{name}-g{index}-p{number}", "d": document})
            ).ok()
            (await api(ATTACH, {"g": group["id"], "p": policy["createPolicy"]["id"]})).ok()
    return (await api(CREATE_KEY, {"u": user["id"]})).ok()["createAccessKey"]["secret"]


async def full_access_policy_id(api: Api) -> str:
    policies = (await api("{ policies { id name system } }")).ok()["policies"]
    [full] = [p for p in policies if p["name"] == "KooMessage FullAccess"]
    assert full["system"] is True
    return full["id"]


async def test_guide_flow_group_with_full_access(api: Api, enterprise: EnterpriseHandle) -> None:
    user = (await api(CREATE_USER, {"n": "alice"})).ok()["createIamUser"]
    group = (await api(CREATE_GROUP, {"n": "senders"})).ok()["createIamGroup"]
    added = (await api(ADD, {"u": user["id"], "g": group["id"]})).ok()["addUserToGroup"]
    assert added["users"] == [{"name": "alice"}]
    attached = (await api(ATTACH, {"g": group["id"], "p": await full_access_policy_id(api)})).ok()
    assert attached["attachPolicy"]["policies"] == [{"name": "KooMessage FullAccess"}]
    key = (await api(CREATE_KEY, {"u": user["id"]})).ok()["createAccessKey"]
    assert key["secret"]
    users = (await api(LIST_USERS, key=key["secret"])).ok()["iamUsers"]
    assert users == [{"id": user["id"], "name": "alice", "groups": [{"name": "senders"}]}]
    me = (await api("{ me { kind name enterprise { id } } }", key=key["secret"])).ok()["me"]
    assert me == {"kind": "IAM_USER", "name": "alice", "enterprise": {"id": enterprise.id}}


async def test_policy_evaluation_table(api: Api, enterprise: EnterpriseHandle) -> None:
    list_users = "KooMessage:iamUser:list"
    cases = {
        # name: (groups of policy documents, allowed?)
        "allow": ([[doc("Allow", list_users)]], True),
        "deny-wins": ([[doc("Allow", "KooMessage:*:*"), doc("Deny", list_users)]], False),
        "wildcard": ([[doc("Allow", "KooMessage:iam*:*")]], True),
        "case": ([[doc("Allow", "kooMessage:IAMUSER:LIST")]], True),
        "no-policy": ([[]], False),
        "other-action": ([[doc("Allow", "KooMessage:iamGroup:list")]], False),
        "two-groups-allow": (
            [[doc("Allow", "KooMessage:template:*")], [doc("Allow", list_users)]],
            True,
        ),
        "two-groups-deny": (
            [[doc("Allow", "KooMessage:*:*")], [doc("Deny", "KooMessage:iamUser:*")]],
            False,
        ),
    }
    for name, (groups, allowed) in cases.items():
        secret = await user_with_policies(api, name, *groups)
        response = await api("{ iamUsers { id } }", key=secret)
        if allowed:
            response.ok()
        else:
            response.error("FORBIDDEN")


async def test_guide_deny_example_blocks_only_task_creation(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    deny = {
        "Version": "1.1",
        "Statement": [{"Effect": "Deny", "Action": ["kooMessage:devSendTask:create"]}],
    }
    user = (await api(CREATE_USER, {"n": "bob"})).ok()["createIamUser"]
    group = (await api(CREATE_GROUP, {"n": "no-send"})).ok()["createIamGroup"]
    (await api(ADD, {"u": user["id"], "g": group["id"]})).ok()
    (await api(ATTACH, {"g": group["id"], "p": await full_access_policy_id(api)})).ok()
    policy = (await api(CREATE_POLICY, {"n": "deny-send", "d": deny})).ok()["createPolicy"]
    (await api(ATTACH, {"g": group["id"], "p": policy["id"]})).ok()
    simulate = """query($u: ID!, $a: String!) { simulatePolicy(userId: $u, action: $a) {
        allowed effect policyName statementIndex matchedAction explanation } }"""
    denied = (await api(simulate, {"u": user["id"], "a": "KooMessage:devSendTask:create"})).ok()[
        "simulatePolicy"
    ]
    assert (
        denied["allowed"] is False
        and denied["effect"] == "Deny"
        and denied["policyName"] == "deny-send"
    )
    allowed = (await api(simulate, {"u": user["id"], "a": "KooMessage:template:delete"})).ok()[
        "simulatePolicy"
    ]
    assert allowed["allowed"] is True and allowed["policyName"] == "KooMessage FullAccess"
    assert "statement 0" in allowed["explanation"]


async def test_malformed_policy_is_bad_input_and_writes_nothing(
    api: Api, enterprise: EnterpriseHandle, runtime
) -> None:
    before = await count_rows(runtime, "iam_policy")
    bad = {
        "Version": "1.1",
        "Statement": [{"Effect": "Allow", "Action": ["KooMessage-template-list"]}],
    }
    error = (await api(CREATE_POLICY, {"n": "bad", "d": bad})).error("BAD_USER_INPUT", "document")
    assert "Service:resource:operation" in error["message"]
    (await api(CREATE_POLICY, {"n": "bad", "d": {"Version": "1.1"}})).error(
        "BAD_USER_INPUT", "document"
    )
    assert await count_rows(runtime, "iam_policy") == before


async def test_duplicate_names_conflict(api: Api, enterprise: EnterpriseHandle) -> None:
    (await api(CREATE_USER, {"n": "dup"})).ok()
    (await api(CREATE_USER, {"n": "dup"})).error("CONFLICT", "name")
    (await api(CREATE_USER, {"n": ""})).error("BAD_USER_INPUT", "name")


async def test_tenants_do_not_see_each_other(
    api: Api, enterprise: EnterpriseHandle, make_enterprise
) -> None:
    other = await make_enterprise("Globex")
    theirs = (await api(CREATE_USER, {"n": "carol"}, key=other.key)).ok()["createIamUser"]
    (await api(CREATE_KEY, {"u": theirs["id"]})).error("NOT_FOUND", "userId")
    group = (await api(CREATE_GROUP, {"n": "mine"})).ok()["createIamGroup"]
    (await api(ADD, {"u": theirs["id"], "g": group["id"]})).error("NOT_FOUND", "userId")
    assert (await api(LIST_USERS)).ok()["iamUsers"] == []
    (await api("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]})).error("NOT_FOUND")
    mine = (
        await api(
            "query($id: ID!) { node(id: $id) { id ... on IamGroup { name } } }", {"id": group["id"]}
        )
    ).ok()
    assert mine["node"] == {"id": group["id"], "name": "mine"}


async def test_access_key_secret_is_stored_hashed(
    api: Api, enterprise: EnterpriseHandle, runtime
) -> None:
    user = (await api(CREATE_USER, {"n": "dave"})).ok()["createIamUser"]
    secret = (await api(CREATE_KEY, {"u": user["id"]})).ok()["createAccessKey"]["secret"]
    from sqlalchemy import text

    async with runtime.db.session() as session:
        stored = (await session.execute(text("SELECT secret_hash FROM access_key"))).scalars().all()
    random_part = secret.split(".", 1)[1]
    assert all(random_part not in value for value in stored)
