"""No self-escalation: an IAM change may grant only what its caller already holds.

AWS IAM's PassRole and permission boundaries keep a delegated administrator
from handing out more than it has. koomsg applies one rule, ``require_held``,
to every change that can widen someone's permissions:

* creating a policy grants its document;
* attaching a policy to a group grants the policy (to every member);
* adding a user to a group grants the user the group's policies;
* creating an access key for another user hands the caller that user's
  effective policies;
* removing a user from a group or detaching a policy grants too when what
  goes away is a Deny: the grant is what the user would be allowed
  afterwards and was not before.

The caller must be allowed, by ``policy.evaluate`` over its own effective
policies (Deny included), every action the grant allows. "Every action" is
each enterprise action of the catalogue (``actions.ACTIONS``; operator
actions never apply to IAM users) and, so that a wildcard cannot widen when
actions are added later, every pattern written in the documents involved,
taken as an action name: granting ``KooMessage:template:*`` needs a caller
allowed ``KooMessage:template:*`` (or wider) as a pattern, and a caller
denied ``KooMessage:template:de*`` cannot grant ``KooMessage:template:*``.
The enterprise root holds everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import Forbidden
from koomsg.core.iam.actions import ACTIONS
from koomsg.core.iam.effective import NamedDocument, named, policies_of_user
from koomsg.core.iam.policy import evaluate
from koomsg.core.principal import Principal, PrincipalKind

_SHOWN = 5


def _catalogue() -> Iterator[str]:
    return (a.name for a in ACTIONS.values() if not a.operator_only)


def _patterns(*document_sets: Sequence[NamedDocument]) -> Iterator[str]:
    for documents in document_sets:
        for _, document in documents:
            for statement in document.get("Statement", []):
                yield from statement.get("Action", [])


def _allows(documents: Sequence[NamedDocument], action: str) -> bool:
    return evaluate(documents, action).allowed


def missing_permissions(
    held: Sequence[NamedDocument],
    grant: Sequence[NamedDocument],
    before: Sequence[NamedDocument] = (),
) -> list[str]:
    """What ``grant`` allows (and ``before`` did not) that ``held`` does not allow."""
    seen: set[str] = set()
    missing: list[str] = []
    for action in chain(_catalogue(), _patterns(grant, before, held)):
        if action.lower() in seen:
            continue
        seen.add(action.lower())
        if _allows(grant, action) and not _allows(before, action) and not _allows(held, action):
            missing.append(action)
    return missing


async def require_held(
    session: AsyncSession,
    *,
    principal: Principal,
    grant: Sequence[NamedDocument],
    before: Sequence[NamedDocument] = (),
    change: str,
    field: str | None = None,
) -> None:
    """Raise FORBIDDEN unless ``principal`` holds every permission ``grant`` gives.

    ``change`` describes the operation for the message ("attaching policy 'x'
    to group 'y'"); ``before`` is what the target held already (removals).
    """
    if principal.kind is PrincipalKind.ENTERPRISE_ROOT:
        return
    if principal.user_id is None:
        raise Forbidden(f"{change} acts on an enterprise's IAM: use an enterprise key")
    held = named(await policies_of_user(session, principal.user_id))
    missing = missing_permissions(held, grant, before)
    if missing:
        raise Forbidden(_message(change, missing, principal.user_id), field=field)


def _message(change: str, missing: list[str], user_id: str) -> str:
    shown = ", ".join(missing[:_SHOWN])
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"{change} would grant permissions you do not hold: {shown}{more}. "
        "Nobody may grant more than they hold; "
        f'simulatePolicy(userId: "{user_id}", action: "{missing[0]}") shows how your '
        "policies decide it"
    )
