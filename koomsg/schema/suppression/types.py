from __future__ import annotations

from datetime import datetime

import strawberry

from koomsg.core.recipients.models import Suppression as SuppressionRow
from koomsg.core.recipients.models import SuppressionReason as CoreSuppressionReason
from koomsg.core.tasks.addresses import display_address
from koomsg.schema.common import Node

SuppressionReason = CoreSuppressionReason
strawberry.enum(
    SuppressionReason,
    description="Why an address is suppressed: it unsubscribed, hard-bounced, or was added by hand.",
)


@strawberry.type(
    description="An address this enterprise never sends to; messages to it are REJECTED."
)
class SuppressionEntry(Node):
    id: strawberry.ID
    address: str = strawberry.field(description="Lower-cased address.")
    reason: SuppressionReason
    detail: str | None = strawberry.field(
        description="The bounce reply, or the note given when added."
    )
    message_id: strawberry.ID | None = strawberry.field(
        description="The message that caused it, if any."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: SuppressionRow) -> SuppressionEntry:
        return cls(
            id=strawberry.ID(row.id),
            address=display_address(row.address),
            reason=CoreSuppressionReason(row.reason),
            detail=row.detail,
            message_id=strawberry.ID(row.message_id) if row.message_id else None,
            created_at=row.created_at,
        )


@strawberry.input
class SuppressionFilter:
    address: str | None = strawberry.field(default=None, description="Part of the address.")
