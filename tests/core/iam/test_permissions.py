"""EffectivePermissions: who may do what, and who may read what an answer reaches."""

from __future__ import annotations

from koomsg.core.iam.permissions import EffectivePermissions
from koomsg.core.principal import Principal, PrincipalKind

OPERATOR = Principal(PrincipalKind.OPERATOR, "ops", "key_o")
ROOT = Principal(PrincipalKind.ENTERPRISE_ROOT, "Acme", "key_r", enterprise_id="ent_1")
USER = Principal(PrincipalKind.IAM_USER, "ann", "key_u", enterprise_id="ent_1", user_id="usr_1")
NO_TEMPLATES = (
    "no-templates",
    {
        "Version": "1.1",
        "Statement": [
            {"Effect": "Allow", "Action": ["KooMessage:*:*"]},
            {"Effect": "Deny", "Action": ["KooMessage:template:*"]},
        ],
    },
)


def test_operators_and_the_root_read_everything_they_reach() -> None:
    for principal in (OPERATOR, ROOT):
        held = EffectivePermissions(principal, [])
        assert held.may_read("KooMessage:template:list").allowed
    # Performing is another matter: operators do not act on an enterprise's resources.
    assert not EffectivePermissions(OPERATOR, []).decide("KooMessage:template:list").allowed
    assert EffectivePermissions(OPERATOR, []).decide("KooMessage:enterprise:list").allowed
    assert not EffectivePermissions(ROOT, []).decide("KooMessage:enterprise:list").allowed


def test_an_iam_user_reads_what_its_policies_allow() -> None:
    held = EffectivePermissions(USER, [NO_TEMPLATES])
    denied = held.may_read("KooMessage:template:list")
    assert not denied.allowed and denied.effect == "Deny"
    assert denied.policy_name == "no-templates"
    assert held.may_read("KooMessage:senderDomain:list").allowed
    assert not EffectivePermissions(USER, []).may_read("KooMessage:senderDomain:list").allowed


def test_each_action_is_decided_once() -> None:
    held = EffectivePermissions(USER, [NO_TEMPLATES])
    first = held.decide("KooMessage:template:list")
    held.documents.clear()  # what was decided stays decided for this request
    assert held.decide("KooMessage:template:list") is first
