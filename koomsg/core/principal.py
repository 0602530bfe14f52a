"""Who is calling: resolved from an access key, handed to every core service."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PrincipalKind(enum.StrEnum):
    OPERATOR = "OPERATOR"
    ENTERPRISE_ROOT = "ENTERPRISE_ROOT"
    IAM_USER = "IAM_USER"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    name: str
    key_id: str
    enterprise_id: str | None = None
    user_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind is PrincipalKind.OPERATOR

    def require_enterprise(self) -> str:
        """The enterprise this principal acts for; operators have none."""
        from koomsg.core.errors import Forbidden

        if self.enterprise_id is None:
            raise Forbidden(
                "this operation acts on an enterprise's resources: use an enterprise key"
            )
        return self.enterprise_id
