from __future__ import annotations

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.iam.policy import FULL_ACCESS_DOCUMENT, action_matches, evaluate, validate_document


def doc(*statements: tuple[str, list[str]]) -> dict:
    return {"Version": "1.1", "Statement": [{"Effect": e, "Action": a} for e, a in statements]}


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("KooMessage:*:*", "KooMessage:senderDomain:create", True),
        ("kooMessage:devSendTask:create", "KooMessage:devSendTask:create", True),
        ("KOOMESSAGE:DEVSENDTASK:CREATE", "KooMessage:devSendTask:create", True),
        ("KooMessage:sender*:*", "KooMessage:senderAddress:delete", True),
        ("KooMessage:*:delete", "KooMessage:template:delete", True),
        ("KooMessage:*:delete", "KooMessage:template:deleteAll", False),
        # A wildcard stays inside its segment.
        ("KooMessage:*", "KooMessage:template:list", False),
        ("KooMessage:template:list", "KooMessage:template:listx", False),
        ("Other:*:*", "KooMessage:template:list", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


def test_allow_deny_and_implicit_deny() -> None:
    action = "KooMessage:devSendTask:create"
    assert evaluate([("full", FULL_ACCESS_DOCUMENT)], action).allowed
    decision = evaluate(
        [
            ("full", FULL_ACCESS_DOCUMENT),
            ("no-send", doc(("Deny", ["kooMessage:devSendTask:create"]))),
        ],
        action,
    )
    assert not decision.allowed and decision.effect == "Deny" and decision.policy_name == "no-send"
    # Order does not matter: an explicit Deny wins wherever it stands.
    decision = evaluate(
        [
            ("no-send", doc(("Deny", ["kooMessage:devSendTask:create"]))),
            ("full", FULL_ACCESS_DOCUMENT),
        ],
        action,
    )
    assert decision.effect == "Deny"
    assert evaluate([], action).effect == "ImplicitDeny"
    assert (
        evaluate([("deny-only", doc(("Deny", ["KooMessage:template:*"])))], action).effect
        == "ImplicitDeny"
    )


def test_explanation_names_the_statement() -> None:
    decision = evaluate(
        [("p", doc(("Allow", ["KooMessage:template:list"]), ("Allow", ["KooMessage:*:*"])))],
        "KooMessage:senderDomain:list",
    )
    assert decision.statement_index == 1
    assert "statement 1 of policy 'p'" in decision.explanation


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ([], "JSON object"),
        ({"Version": "1.1"}, "Statement"),
        ({"Version": "2", "Statement": []}, "Version"),
        ({"Version": "1.1", "Statement": []}, "Statement"),
        (
            {"Version": "1.1", "Statement": [{"Effect": "Maybe", "Action": ["KooMessage:*:*"]}]},
            "Effect",
        ),
        (
            {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": "KooMessage:*:*"}]},
            "list of strings",
        ),
        ({"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": [1]}]}, "list of strings"),
        (
            {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["KooMessage:*"]}]},
            "Service:resource:operation",
        ),
        (
            {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["Koo Message:a:b"]}]},
            "Service:resource:operation",
        ),
        (
            {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": ["a:b:c"], "Bogus": 1}]},
            "Bogus",
        ),
    ],
)
def test_malformed_documents_say_what_is_wrong(document: object, words: str) -> None:
    with pytest.raises(BadInput) as raised:
        validate_document(document)
    assert words in raised.value.message
    assert raised.value.field == "document"
