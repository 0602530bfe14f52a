"""The subset rule: a grant must lie within what its caller holds, wildcards and Deny included."""

from __future__ import annotations

from typing import Any

from koomsg.core.iam.actions import ACTIONS
from koomsg.core.iam.grants import missing_permissions
from koomsg.core.iam.policy import FULL_ACCESS_DOCUMENT

ENTERPRISE_ACTIONS = [a.name for a in ACTIONS.values() if not a.operator_only]


def doc(*statements: tuple[str, list[str]]) -> dict[str, Any]:
    return {"Version": "1.1", "Statement": [{"Effect": e, "Action": a} for e, a in statements]}


FULL = [("full", FULL_ACCESS_DOCUMENT)]


def test_full_access_holder_may_grant_anything() -> None:
    assert missing_permissions(FULL, FULL) == []
    assert missing_permissions(FULL, [("t", doc(("Allow", ["KooMessage:template:*"])))]) == []


def test_nothing_held_nothing_granted() -> None:
    assert missing_permissions([], []) == []
    # A grant made only of Deny gives nothing.
    assert missing_permissions([], [("d", doc(("Deny", ["KooMessage:*:*"])))]) == []


def test_a_narrow_caller_cannot_grant_full_access() -> None:
    held = [("groups", doc(("Allow", ["KooMessage:iamGroup:update"])))]
    missing = missing_permissions(held, FULL)
    assert "KooMessage:iamGroup:update" not in missing
    assert "KooMessage:template:delete" in missing
    # The wildcard itself is a permission the caller lacks.
    assert "KooMessage:*:*" in missing
    # Operator actions never apply to IAM users, so they are not part of a grant.
    assert "KooMessage:enterprise:create" not in missing


def test_the_callers_deny_counts() -> None:
    held = [("full", FULL_ACCESS_DOCUMENT), ("no-iam", doc(("Deny", ["KooMessage:iamUser:*"])))]
    missing = missing_permissions(held, FULL)
    assert {"KooMessage:iamUser:list", "KooMessage:iamUser:create"} <= set(missing)
    assert "KooMessage:template:list" not in missing


def test_the_grants_deny_narrows_it() -> None:
    held = [("full", FULL_ACCESS_DOCUMENT), ("no-iam", doc(("Deny", ["KooMessage:iamUser:*"])))]
    grant = [
        (
            "all-but-users",
            doc(("Allow", ["KooMessage:template:*"]), ("Deny", ["KooMessage:template:delete"])),
        )
    ]
    assert missing_permissions(held, grant) == []


def test_listing_every_action_is_not_holding_the_wildcard() -> None:
    # Today's actions one by one do not cover an action added tomorrow.
    held = [("each", doc(("Allow", ENTERPRISE_ACTIONS)))]
    assert missing_permissions(held, FULL) == ["KooMessage:*:*"]
    assert missing_permissions(held, [("same", doc(("Allow", ENTERPRISE_ACTIONS)))]) == []


def test_wildcards_compare_as_patterns() -> None:
    held = [("t", doc(("Allow", ["KooMessage:template:*"])))]
    assert missing_permissions(held, [("t", doc(("Allow", ["KooMessage:template:li*"])))]) == []
    wider = missing_permissions(held, [("t", doc(("Allow", ["KooMessage:templ*:*"])))])
    assert wider == ["KooMessage:templ*:*"]
    # Case does not matter, as in evaluation.
    assert missing_permissions(held, [("t", doc(("Allow", ["kooMessage:TEMPLATE:list"])))]) == []


def test_a_partial_deny_of_the_caller_blocks_the_wider_wildcard() -> None:
    held = [
        ("t", doc(("Allow", ["KooMessage:template:*"]))),
        ("no-de", doc(("Deny", ["KooMessage:template:de*"]))),
    ]
    missing = missing_permissions(held, [("t", doc(("Allow", ["KooMessage:template:*"])))])
    assert "KooMessage:template:delete" in missing and "KooMessage:template:de*" in missing


def test_before_is_subtracted() -> None:
    held = [("t", doc(("Allow", ["KooMessage:template:list"])))]
    before = [("t", doc(("Allow", ["KooMessage:template:*"]), ("Deny", ["KooMessage:*:delete"])))]
    after = [("t", doc(("Allow", ["KooMessage:template:*"])))]
    # Removing the Deny gives template:delete, nothing the user already had.
    assert missing_permissions(held, after, before) == ["KooMessage:template:delete"]
    assert missing_permissions(held, before, before) == []


def test_removing_a_wildcard_deny_grants_the_wildcard() -> None:
    held = [("t", doc(("Allow", ["KooMessage:template:list"])))]
    before = [("all", doc(("Allow", ["KooMessage:*:*"]), ("Deny", ["KooMessage:template:*"])))]
    after = FULL
    missing = missing_permissions(held, after, before)
    assert "KooMessage:template:*" in missing and "KooMessage:template:delete" in missing
    assert "KooMessage:template:list" not in missing
    assert "KooMessage:iamUser:list" not in missing  # held before the change already
