"""The key lifecycle over HTTP: list, last use, revoke, the two-key limit, and the IAM verbs
that take away (delete a user, remove it from a group, detach a policy)."""

from __future__ import annotations

import json

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows
from tests.schema.iam_support import (
    ADD,
    ATTACH,
    CREATE_GROUP,
    CREATE_KEY,
    CREATE_USER,
    GROUP_POLICIES,
    GROUP_USERS,
    doc,
    full_access_policy_id,
    member,
)

KEYS = """query($u: ID) { accessKeys(userId: $u) {
    id keyId name secret createdAt lastUsedAt revokedAt
    owner { kind name enterprise { id } } } }"""
REVOKE = "mutation($id: ID!) { revokeAccessKey(id: $id) { id keyId revokedAt } }"
DELETE_USER = "mutation($id: ID!) { deleteIamUser(id: $id) }"
REMOVE = "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id users { name } } }"
DETACH = "mutation($g: ID!, $p: ID!) { detachPolicy(groupId: $g, policyId: $p) { id policies { name } } }"
ME = "{ me { kind name } }"


def key_id(secret: str) -> str:
    return secret.split(".", 1)[0]


async def new_key(api: Api, user_id: str, key: str | None = None) -> str:
    made = (await api(CREATE_KEY, {"u": user_id}, key=key)).ok()["createAccessKey"]
    return str(made["secret"])


async def test_keys_are_listed_with_their_metadata_never_their_secret(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    alice = (await api(CREATE_USER, {"n": "alice"})).ok()["createIamUser"]
    first, second = [await new_key(api, alice["id"]) for _ in range(2)]
    response = await api(KEYS)
    listed = response.ok()["accessKeys"]
    assert [k["keyId"] for k in listed] == [key_id(enterprise.key), key_id(first), key_id(second)]
    root, mine = listed[0], listed[1]
    assert root["owner"] == {
        "kind": "ENTERPRISE_ROOT",
        "name": "Acme",
        "enterprise": {"id": enterprise.id},
    }
    assert mine["owner"]["kind"] == "IAM_USER" and mine["name"] == "alice"
    assert mine["id"] == mine["keyId"] and mine["createdAt"] and mine["revokedAt"] is None
    assert all(k["secret"] is None for k in listed)
    text = json.dumps(response.body)
    assert first.split(".")[1] not in text and second.split(".")[1] not in text
    narrowed = (await api(KEYS, {"u": alice["id"]})).ok()["accessKeys"]
    assert [k["keyId"] for k in narrowed] == [key_id(first), key_id(second)]


async def test_last_use_is_recorded_after_the_request(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    alice = (await api(CREATE_USER, {"n": "alice"})).ok()["createIamUser"]
    used, unused = await new_key(api, alice["id"]), await new_key(api, alice["id"])
    (await api(ME, key=used)).ok()
    await runtime.key_usage.drain()
    listed = {k["keyId"]: k for k in (await api(KEYS, {"u": alice["id"]})).ok()["accessKeys"]}
    assert listed[key_id(used)]["lastUsedAt"] is not None
    assert listed[key_id(unused)]["lastUsedAt"] is None


async def test_a_revoked_key_is_refused_on_the_next_request(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    alice = (await api(CREATE_USER, {"n": "alice"})).ok()["createIamUser"]
    secret = await new_key(api, alice["id"])
    assert (await api(ME, key=secret)).ok()["me"]["name"] == "alice"
    revoked = (await api(REVOKE, {"id": key_id(secret)})).ok()["revokeAccessKey"]
    assert revoked["revokedAt"]
    error = (await api(ME, key=secret)).error("UNAUTHENTICATED")
    assert "revoked" in error["message"]
    # Revoking again changes nothing.
    again = (await api(REVOKE, {"id": key_id(secret)})).ok()["revokeAccessKey"]
    assert again["revokedAt"] == revoked["revokedAt"]


async def test_at_most_two_active_keys_per_user(api: Api, enterprise: EnterpriseHandle) -> None:
    alice = (await api(CREATE_USER, {"n": "alice"})).ok()["createIamUser"]
    old, new = await new_key(api, alice["id"]), await new_key(api, alice["id"])
    error = (await api(CREATE_KEY, {"u": alice["id"]})).error("PRECONDITION_FAILED", "userId")
    assert "already has 2 active access keys" in error["message"]
    assert "revokeAccessKey" in error["message"]
    # Rotation: revoke the old key, then a new one may be made; the other kept working.
    (await api(REVOKE, {"id": key_id(old)})).ok()
    await new_key(api, alice["id"])
    assert (await api(ME, key=new)).ok()


async def test_what_an_iam_user_sees_of_the_keys(
    api: Api, enterprise: EnterpriseHandle, make_enterprise
) -> None:
    lister = await member(api, "lister", doc("Allow", "KooMessage:accessKey:list"))
    plain = await member(api, "plain")
    everyone = (await api(KEYS, key=lister.secret)).ok()["accessKeys"]
    # Every IAM user's key, not the root's.
    assert {k["keyId"] for k in everyone} == {key_id(lister.secret), key_id(plain.secret)}
    own = (await api(KEYS, key=plain.secret)).ok()["accessKeys"]
    assert [k["keyId"] for k in own] == [key_id(plain.secret)]
    narrowed = (await api(KEYS, {"u": plain.id}, key=plain.secret)).ok()["accessKeys"]
    assert [k["keyId"] for k in narrowed] == [key_id(plain.secret)]
    (await api(KEYS, {"u": lister.id}, key=plain.secret)).error("FORBIDDEN")
    other = await make_enterprise("Globex")
    theirs = (await api(CREATE_USER, {"n": "carol"}, key=other.key)).ok()["createIamUser"]
    (await api(KEYS, {"u": theirs["id"]})).error("NOT_FOUND", "userId")
    (await api(KEYS, key=api.keys["operator"])).error("FORBIDDEN")


async def test_root_keys_are_revoked_by_the_root_only(
    api: Api, enterprise: EnterpriseHandle, make_enterprise
) -> None:
    revoker = await member(api, "revoker", doc("Allow", "KooMessage:accessKey:revoke"))
    plain = await member(api, "plain")
    error = (await api(REVOKE, {"id": key_id(enterprise.key)}, key=revoker.secret)).error(
        "FORBIDDEN", "id"
    )
    assert "root key" in error["message"]
    (await api(REVOKE, {"id": key_id(plain.secret)}, key=revoker.secret)).ok()
    (await api(ME, key=plain.secret)).error("UNAUTHENTICATED")
    other = await make_enterprise("Globex")
    (await api(REVOKE, {"id": key_id(other.key)})).error("NOT_FOUND", "id")
    (await api(REVOKE, {"id": key_id(api.keys["operator"])})).error("NOT_FOUND", "id")
    assert (await api(ME, key=other.key)).ok()
    # The root revokes its own kind: a second root key, or the one it calls with.
    (await api(REVOKE, {"id": key_id(other.key)}, key=other.key)).ok()
    (await api(ME, key=other.key)).error("UNAUTHENTICATED")


async def test_deleting_a_user_revokes_its_keys_and_ends_its_memberships(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    gone = await member(api, "gone", policy_ids=[await full_access_policy_id(api)])
    second = await new_key(api, gone.id)
    assert (await api(DELETE_USER, {"id": gone.id})).ok()["deleteIamUser"] == gone.id
    for secret in (gone.secret, second):
        (await api(ME, key=secret)).error("UNAUTHENTICATED")
    assert (await api("{ iamUsers { name } }")).ok()["iamUsers"] == []
    assert (await api(GROUP_USERS, {"id": gone.group_id})).ok()["node"]["users"] == []
    assert await count_rows(runtime, "iam_group_member") == 0
    # The keys stay on record, revoked, with their owner's name.
    kept = (await api(KEYS)).ok()["accessKeys"][1:]
    assert [(k["name"], bool(k["revokedAt"])) for k in kept] == [("gone", True), ("gone", True)]
    (await api(DELETE_USER, {"id": gone.id})).error("NOT_FOUND", "userId")
    # The name is free again.
    (await api(CREATE_USER, {"n": "gone"})).ok()


async def test_remove_from_group_and_detach_policy_take_permissions_away(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    full = await full_access_policy_id(api)
    worker = await member(api, "worker", policy_ids=[full])
    assert (await api("{ iamUsers { name } }", key=worker.secret)).ok()
    detached = (await api(DETACH, {"g": worker.group_id, "p": full})).ok()["detachPolicy"]
    assert detached["policies"] == []
    (await api("{ iamUsers { name } }", key=worker.secret)).error("FORBIDDEN")
    (await api(DETACH, {"g": worker.group_id, "p": full})).ok()  # not attached: no change
    (await api(ATTACH, {"g": worker.group_id, "p": full})).ok()
    removed = (await api(REMOVE, {"u": worker.id, "g": worker.group_id})).ok()
    assert removed["removeUserFromGroup"]["users"] == []
    (await api("{ iamUsers { name } }", key=worker.secret)).error("FORBIDDEN")
    (await api(REMOVE, {"u": worker.id, "g": worker.group_id})).ok()  # not a member: no change


async def test_removing_a_deny_is_checked_like_a_grant(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    full = await full_access_policy_id(api)
    target = await member(api, "target", policy_ids=[full])
    fence = (await api(CREATE_GROUP, {"n": "fence"})).ok()["createIamGroup"]
    deny = (
        await api(
            'mutation($d: JSON!) { createPolicy(name: "no-templates", document: $d) { id } }',
            {"d": doc("Deny", "KooMessage:template:*")},
        )
    ).ok()["createPolicy"]["id"]
    (await api(ATTACH, {"g": fence["id"], "p": deny})).ok()
    (await api(ADD, {"u": target.id, "g": fence["id"]})).ok()
    editor = await member(
        api,
        "editor",
        doc("Allow", "KooMessage:iamGroup:removeUser", "KooMessage:iamGroup:detachPolicy"),
    )
    error = (await api(REMOVE, {"u": target.id, "g": fence["id"]}, key=editor.secret)).error(
        "FORBIDDEN", "groupId"
    )
    assert "removing user 'target' from group 'fence'" in error["message"]
    assert "KooMessage:template:" in error["message"]
    error = (await api(DETACH, {"g": fence["id"], "p": deny}, key=editor.secret)).error(
        "FORBIDDEN", "policyId"
    )
    assert "(member 'target')" in error["message"]
    assert (await api(GROUP_POLICIES, {"id": fence["id"]})).ok()["node"]["policies"] == [
        {"name": "no-templates"}
    ]
    # Taking away only is fine: out of the FullAccess group the target gains nothing.
    # (The editor may not list users: it reads back only the group's id.)
    remove_ids = REMOVE.replace("{ id users { name } }", "{ id }")
    (await api(remove_ids, {"u": target.id, "g": target.group_id}, key=editor.secret)).ok()
    # The root may lift the fence.
    (await api(DETACH, {"g": fence["id"], "p": deny})).ok()
