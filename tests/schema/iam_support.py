"""IAM helpers shared by the IAM and access-key API tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from koomsg.testing.plugin import Api

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


SIMULATE = """query($u: ID!, $a: String!) { simulatePolicy(userId: $u, action: $a) {
    allowed effect explanation } }"""
GROUP_POLICIES = "query($id: ID!) { node(id: $id) { ... on IamGroup { policies { name } } } }"
GROUP_USERS = "query($id: ID!) { node(id: $id) { ... on IamGroup { users { name } } } }"
GROUP_EDITOR = doc("Allow", "KooMessage:iamGroup:update", "KooMessage:iamGroup:list")


@dataclass
class Member:
    id: str
    group_id: str
    secret: str


async def member(
    api: Api, name: str, *documents: dict[str, Any], policy_ids: Sequence[str] = ()
) -> Member:
    """An IAM user (made by the root) alone in its own group with these policies, and its key."""
    user = (await api(CREATE_USER, {"n": name})).ok()["createIamUser"]
    group = (await api(CREATE_GROUP, {"n": f"{name}-group"})).ok()["createIamGroup"]
    (await api(ADD, {"u": user["id"], "g": group["id"]})).ok()
    attach = list(policy_ids)
    for number, document in enumerate(documents):
        made = (await api(CREATE_POLICY, {"n": f"{name}-p{number}", "d": document})).ok()
        attach.append(made["createPolicy"]["id"])
    for policy_id in attach:
        (await api(ATTACH, {"g": group["id"], "p": policy_id})).ok()
    secret = (await api(CREATE_KEY, {"u": user["id"]})).ok()["createAccessKey"]["secret"]
    return Member(user["id"], group["id"], secret)
