"""IAM policy documents: validation and evaluation, as pure functions.

A document is ``{"Version": "1.1", "Statement": [{"Effect": "Allow"|"Deny",
"Action": ["Service:resource:operation", ...]}]}``. ``*`` matches within one
segment; whole action names compare case-insensitively. An explicit Deny wins
over any Allow, and with no matching Allow the answer is deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from koomsg.core.errors import BadInput

_SEGMENT = re.compile(r"^[A-Za-z0-9_*-]+$")
_STATEMENT_KEYS = {"Effect", "Action", "Sid"}
SUPPORTED_VERSIONS = ("1.1",)
# As compact JSON; hosted IAM allows 6 144 characters. Every grant check walks each
# action of every policy involved, so a document's size is that check's cost.
MAX_DOCUMENT_CHARS = 16_384
MAX_STATEMENTS = 100


def validate_document(document: Any, *, field: str = "document") -> dict[str, Any]:
    if not isinstance(document, dict):
        raise BadInput(field, "a policy document must be a JSON object")
    if len(json.dumps(document, separators=(",", ":"))) > MAX_DOCUMENT_CHARS:
        raise BadInput(
            field, f"a policy document is at most {MAX_DOCUMENT_CHARS} characters of JSON"
        )
    unknown = set(document) - {"Version", "Statement"}
    if unknown:
        raise BadInput(
            field, f"unknown key(s) in the policy document: {', '.join(sorted(unknown))}"
        )
    if document.get("Version") not in SUPPORTED_VERSIONS:
        raise BadInput(field, 'Version must be "1.1"')
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise BadInput(field, "Statement must be a non-empty list of statements")
    if len(statements) > MAX_STATEMENTS:
        raise BadInput(field, f"a policy document has at most {MAX_STATEMENTS} statements")
    for index, statement in enumerate(statements):
        _validate_statement(statement, f"Statement[{index}]", field)
    return document


def _validate_statement(statement: Any, where: str, field: str) -> None:
    if not isinstance(statement, dict):
        raise BadInput(field, f"{where} must be an object")
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise BadInput(field, f"{where} has unsupported key(s): {', '.join(sorted(unknown))}")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise BadInput(field, f'{where}.Effect must be "Allow" or "Deny"')
    actions = statement.get("Action")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        raise BadInput(field, f"{where}.Action must be a non-empty list of strings")
    for action in actions:
        segments = action.split(":")
        if len(segments) != 3 or not all(_SEGMENT.match(s) for s in segments):
            raise BadInput(
                field,
                f"{where}.Action {action!r} is not of the form Service:resource:operation "
                "(letters, digits, '_', '-' and '*' wildcards)",
            )


@lru_cache(maxsize=1024)
def _pattern(action_pattern: str) -> re.Pattern[str]:
    parts = (re.escape(seg).replace(r"\*", "[^:]*") for seg in action_pattern.split(":"))
    return re.compile(":".join(parts), re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    return _pattern(pattern).fullmatch(action) is not None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    effect: str  # "Allow", "Deny" (explicit) or "ImplicitDeny"
    policy_name: str | None = None
    statement_index: int | None = None
    matched_action: str | None = None

    @property
    def explanation(self) -> str:
        if self.effect == "ImplicitDeny":
            return "denied: no statement of any attached policy allows this action"
        verb = "allowed" if self.allowed else "denied"
        return (
            f"{verb} by statement {self.statement_index} of policy {self.policy_name!r} "
            f"({self.effect} {self.matched_action})"
        )


def evaluate(policies: Iterable[tuple[str, dict[str, Any]]], action: str) -> Decision:
    """Decide ``action`` against (policy name, document) pairs."""
    allow: Decision | None = None
    for policy_name, document in policies:
        for index, statement in enumerate(document.get("Statement", [])):
            for pattern in statement.get("Action", []):
                if not action_matches(pattern, action):
                    continue
                if statement.get("Effect") == "Deny":
                    return Decision(False, "Deny", policy_name, index, pattern)
                if allow is None:
                    allow = Decision(True, "Allow", policy_name, index, pattern)
    return allow or Decision(False, "ImplicitDeny")


FULL_ACCESS_NAME = "KooMessage FullAccess"
FULL_ACCESS_DOCUMENT: dict[str, Any] = {
    "Version": "1.1",
    "Statement": [{"Effect": "Allow", "Action": ["KooMessage:*:*"]}],
}

# What an enterprise root key or an operator (for operator actions) gets: they
# are not governed by IAM policies, like a hosted account's owner.
ACTION_ROOT_DECISION = Decision(True, "Allow", "(account owner)", None, "*")
