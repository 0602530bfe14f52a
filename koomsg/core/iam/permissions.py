"""One principal's permissions, loaded once and decided many times.

A query can name a resource at many places (every task's ``template``, every
group's ``policies``): each place is checked, but the principal's policies are
read from the database once, when the holder is loaded, and each action is
decided once. A holder belongs to one request: it never outlives the policies
it read (the API drops it after a mutation, which may have changed them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.iam.actions import get_action
from koomsg.core.iam.effective import NamedDocument, named, policies_of_user
from koomsg.core.iam.policy import ACTION_ROOT_DECISION, Decision, evaluate
from koomsg.core.principal import Principal, PrincipalKind

IMPLICIT_DENY = Decision(False, "ImplicitDeny")


@dataclass
class EffectivePermissions:
    principal: Principal
    # The IAM user's policies as (name, document); empty for the root and operators,
    # whom no policy governs.
    documents: list[NamedDocument]
    _decisions: dict[str, Decision] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, principal: Principal) -> EffectivePermissions:
        if principal.kind is not PrincipalKind.IAM_USER or principal.user_id is None:
            return cls(principal, [])
        return cls(principal, named(await policies_of_user(session, principal.user_id)))

    def decide(self, action: str) -> Decision:
        """What the policies say about performing ``action`` (no enablement check)."""
        if action not in self._decisions:
            self._decisions[action] = self._decide(action)
        return self._decisions[action]

    def _decide(self, action: str) -> Decision:
        spec = get_action(action)
        if spec.operator_only:
            return ACTION_ROOT_DECISION if self.principal.is_operator else IMPLICIT_DENY
        if self.principal.is_operator:
            return IMPLICIT_DENY
        if self.principal.kind is PrincipalKind.ENTERPRISE_ROOT:
            return ACTION_ROOT_DECISION
        return evaluate(self.documents, action)

    def may_read(self, action: str) -> Decision:
        """Whether a resource reached inside an answer may be shown.

        Operators and the enterprise root hold everything within their scope:
        what they reached through a root field they may read. IAM users need
        ``action`` (the resource's list/read action) from their policies.
        """
        if self.principal.kind is not PrincipalKind.IAM_USER:
            get_action(action)
            return ACTION_ROOT_DECISION
        return self.decide(action)
