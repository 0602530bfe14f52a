"""Every action a resolver can name: the one table of permissions.

Action names follow the hosted IAM form ``KooMessage:<resource>:<operation>``.
Operator actions can only be performed with an operator key; the rest act on
one enterprise's resources and are evaluated against its IAM policies (the
enterprise root key may do all of them). The README shows this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    operator_only: bool = False
    needs_enabled_service: bool = True


_OPERATOR = [
    ("KooMessage:enterprise:create", "Create an enterprise"),
    (
        "KooMessage:enterprise:verify",
        "Set an enterprise's real-name verification and industry class",
    ),
    ("KooMessage:enterprise:list", "List enterprises"),
    (
        "KooMessage:enterprise:suspend",
        "Suspend or resume an enterprise (its writes and sending stop; nothing is lost)",
    ),
    ("KooMessage:enterpriseKey:create", "Create an enterprise root access key"),
    (
        "KooMessage:enterpriseRateLimit:update",
        "Set an enterprise's API rate limit (requests a second, burst)",
    ),
    ("KooMessage:templateReview:list", "List templates awaiting review across enterprises"),
    ("KooMessage:templateReview:approve", "Approve a template"),
    ("KooMessage:templateReview:reject", "Reject a template"),
    ("KooMessage:packageOffer:create", "Create a package offer"),
    ("KooMessage:packageOffer:retire", "Retire a package offer"),
]

_ENTERPRISE = [
    ("KooMessage:service:enable", "Enable KooMessage for the enterprise (accept the terms)"),
    ("KooMessage:overview:get", "Read the overview: packages, emails left, pay-per-use usage"),
    ("KooMessage:packageOffer:list", "List package offers"),
    ("KooMessage:package:quote", "Calculate the price of a package purchase"),
    ("KooMessage:package:purchase", "Purchase packages"),
    ("KooMessage:billing:update", "Set the monthly pay-per-use cap"),
    ("KooMessage:senderDomain:list", "List and read sender domains"),
    ("KooMessage:senderDomain:create", "Create a sender domain"),
    ("KooMessage:senderDomain:update", "Edit a sender domain"),
    ("KooMessage:senderDomain:verify", "Verify a sender domain's DNS records"),
    ("KooMessage:senderDomain:delete", "Delete a sender domain"),
    ("KooMessage:senderAddress:list", "List and read sender addresses"),
    ("KooMessage:senderAddress:create", "Create a sender address"),
    ("KooMessage:senderAddress:delete", "Delete a sender address"),
    ("KooMessage:template:list", "List, read and preview templates (own and public)"),
    ("KooMessage:template:create", "Create or copy a template"),
    ("KooMessage:template:update", "Edit a template"),
    ("KooMessage:template:delete", "Delete a template"),
    ("KooMessage:devSendTask:list", "List and read sending tasks, download recipient sample files"),
    ("KooMessage:devSendTask:create", "Create a sending task"),
    ("KooMessage:devSendTask:cancel", "Cancel a sending task"),
    ("KooMessage:email:send", "Send one transactional email through the API"),
    ("KooMessage:sendingDetail:list", "Read sending details"),
    ("KooMessage:statistics:get", "Read statistics reports"),
    ("KooMessage:suppression:list", "List the suppression list"),
    ("KooMessage:suppression:update", "Add to or remove from the suppression list"),
    ("KooMessage:iamUser:list", "List IAM users"),
    ("KooMessage:iamUser:create", "Create an IAM user"),
    ("KooMessage:iamUser:delete", "Delete an IAM user: its keys are revoked, its memberships end"),
    ("KooMessage:iamGroup:list", "List IAM groups"),
    ("KooMessage:iamGroup:create", "Create an IAM group"),
    ("KooMessage:iamGroup:update", "Add users to a group, attach policies to a group"),
    ("KooMessage:iamGroup:removeUser", "Remove a user from a group"),
    ("KooMessage:iamGroup:detachPolicy", "Detach a policy from a group"),
    ("KooMessage:policy:list", "List policies"),
    ("KooMessage:policy:create", "Create a custom policy"),
    ("KooMessage:policy:simulate", "Explain which statement allows or denies an action"),
    ("KooMessage:accessKey:list", "List the IAM users' access keys (never their secrets)"),
    ("KooMessage:accessKey:create", "Create an access key for another IAM user"),
    ("KooMessage:accessKey:revoke", "Revoke another IAM user's access key"),
]

ACTIONS: dict[str, Action] = {
    **{name: Action(name, text, operator_only=True) for name, text in _OPERATOR},
    **{
        name: Action(name, text, needs_enabled_service=name != "KooMessage:service:enable")
        for name, text in _ENTERPRISE
    },
}


def get_action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise LookupError(
            f"undeclared action {name!r}: add it to koomsg/core/iam/actions.py"
        ) from None
