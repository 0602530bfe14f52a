from __future__ import annotations

from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows
from tests.schema.iam_support import (
    ADD,
    ATTACH,
    CREATE_GROUP,
    CREATE_KEY,
    CREATE_POLICY,
    CREATE_USER,
    GROUP_EDITOR,
    GROUP_POLICIES,
    GROUP_USERS,
    LIST_USERS,
    SIMULATE,
    doc,
    full_access_policy_id,
    member,
    user_with_policies,
)


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


# ---------------------------------------------------------------- no self-escalation


async def test_group_editor_cannot_attach_full_access_to_its_own_group(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    editor = await member(api, "editor", GROUP_EDITOR)
    full = await full_access_policy_id(api)
    error = (await api(ATTACH, {"g": editor.group_id, "p": full}, key=editor.secret)).error(
        "FORBIDDEN", "policyId"
    )
    assert "attaching policy 'KooMessage FullAccess'" in error["message"]
    assert "KooMessage:overview:get" in error["message"]  # the first missing one, by name
    assert f'simulatePolicy(userId: "{editor.id}"' in error["message"]
    policies = (await api(GROUP_POLICIES, {"id": editor.group_id})).ok()["node"]["policies"]
    assert policies == [{"name": "editor-p0"}]
    # The simulator explains the missing permission the message names.
    explained = (await api(SIMULATE, {"u": editor.id, "a": "KooMessage:overview:get"})).ok()
    assert explained["simulatePolicy"]["effect"] == "ImplicitDeny"


async def test_group_editor_cannot_join_the_admins_group(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    admin = await member(api, "admin", policy_ids=[await full_access_policy_id(api)])
    editor = await member(api, "editor", GROUP_EDITOR)
    error = (await api(ADD, {"u": editor.id, "g": admin.group_id}, key=editor.secret)).error(
        "FORBIDDEN", "groupId"
    )
    assert "adding user 'editor' to group 'admin-group'" in error["message"]
    users = (await api(GROUP_USERS, {"id": admin.group_id})).ok()["node"]["users"]
    assert users == [{"name": "admin"}]
    # A group that grants nothing beyond the editor's own permissions is fine to join.
    empty = (await api(CREATE_GROUP, {"n": "empty"})).ok()["createIamGroup"]
    # Without KooMessage:iamUser:list the editor may not read the group's users back.
    joined = "mutation($u: ID!, $g: ID!) { addUserToGroup(userId: $u, groupId: $g) { id } }"
    (await api(joined, {"u": editor.id, "g": empty["id"]}, key=editor.secret)).ok()


async def test_key_creator_cannot_mint_a_key_for_the_admin(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    admin = await member(api, "admin", policy_ids=[await full_access_policy_id(api)])
    creator = await member(api, "creator", doc("Allow", "KooMessage:accessKey:create"))
    error = (await api(CREATE_KEY, {"u": admin.id}, key=creator.secret)).error(
        "FORBIDDEN", "userId"
    )
    assert "creating an access key for user 'admin'" in error["message"]
    plain = (await api(CREATE_USER, {"n": "plain"})).ok()["createIamUser"]
    assert (await api(CREATE_KEY, {"u": plain["id"]}, key=creator.secret)).ok()


async def test_policy_creator_cannot_write_itself_more(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    creator = await member(api, "author", doc("Allow", "KooMessage:policy:create"))
    wider = doc("Allow", "KooMessage:template:*")
    error = (await api(CREATE_POLICY, {"n": "wider", "d": wider}, key=creator.secret)).error(
        "FORBIDDEN", "document"
    )
    assert "KooMessage:template:list" in error["message"]
    same = doc("Allow", "KooMessage:policy:create")
    (await api(CREATE_POLICY, {"n": "same", "d": same}, key=creator.secret)).ok()
    # Denying is never an escalation.
    deny = doc("Deny", "KooMessage:*:*")
    (await api(CREATE_POLICY, {"n": "deny", "d": deny}, key=creator.secret)).ok()


async def test_a_caller_holding_everything_may_grant_it(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    full = await full_access_policy_id(api)
    boss = await member(api, "boss", policy_ids=[full])
    admin = await member(api, "admin", policy_ids=[full])
    team = (await api(CREATE_GROUP, {"n": "team"}, key=boss.secret)).ok()["createIamGroup"]
    (await api(ATTACH, {"g": team["id"], "p": full}, key=boss.secret)).ok()
    (await api(ADD, {"u": admin.id, "g": team["id"]}, key=boss.secret)).ok()
    (await api(CREATE_KEY, {"u": admin.id}, key=boss.secret)).ok()
    everything = doc("Allow", "KooMessage:*:*")
    (await api(CREATE_POLICY, {"n": "all", "d": everything}, key=boss.secret)).ok()


async def test_a_caller_denied_one_action_cannot_grant_it(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    full = await full_access_policy_id(api)
    boss = await member(api, "boss", doc("Deny", "KooMessage:template:delete"), policy_ids=[full])
    team = (await api(CREATE_GROUP, {"n": "team"}, key=boss.secret)).ok()["createIamGroup"]
    error = (await api(ATTACH, {"g": team["id"], "p": full}, key=boss.secret)).error("FORBIDDEN")
    assert "KooMessage:template:delete" in error["message"]
    # Everything but what the boss is denied may be handed on.
    narrower = doc("Allow", "KooMessage:*:*")
    narrower["Statement"].append({"Effect": "Deny", "Action": ["KooMessage:template:delete"]})
    (await api(CREATE_POLICY, {"n": "all-but-delete", "d": narrower}, key=boss.secret)).ok()


async def test_the_root_may_grant_everything(api: Api, enterprise: EnterpriseHandle) -> None:
    editor = await member(api, "editor", GROUP_EDITOR)
    admin = await member(api, "admin", policy_ids=[await full_access_policy_id(api)])
    (await api(ATTACH, {"g": editor.group_id, "p": await full_access_policy_id(api)})).ok()
    (await api(ADD, {"u": editor.id, "g": admin.group_id})).ok()
    (await api(CREATE_KEY, {"u": admin.id})).ok()


async def test_a_user_may_always_create_and_revoke_its_own_keys(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    nobody = await member(api, "nobody")  # no policy at all
    (await api("{ iamUsers { id } }", key=nobody.secret)).error("FORBIDDEN")
    second = (await api(CREATE_KEY, {"u": nobody.id}, key=nobody.secret)).ok()["createAccessKey"]
    first_id = nobody.secret.split(".")[0]
    revoke = "mutation($id: ID!) { revokeAccessKey(id: $id) { keyId revokedAt } }"
    revoked = (await api(revoke, {"id": first_id}, key=second["secret"])).ok()["revokeAccessKey"]
    assert revoked["keyId"] == first_id and revoked["revokedAt"]
    (await api("{ me { name } }", key=nobody.secret)).error("UNAUTHENTICATED")
    assert (await api("{ me { name } }", key=second["secret"])).ok()["me"] == {"name": "nobody"}
    # Someone else's key is another matter.
    other = await member(api, "other")
    (await api(CREATE_KEY, {"u": other.id}, key=second["secret"])).error("FORBIDDEN")
    other_key = other.secret.split(".")[0]
    (await api(revoke, {"id": other_key}, key=second["secret"])).error("FORBIDDEN")
