"""``sendEmails``: up to 100 transactional messages in one request, each on its own.

Every item runs in a savepoint of the request's transaction, so a refused item
rolls back only what it wrote and the others are kept; the request commits
once for all of them (one round trip to the database's log instead of a
hundred). A refusal is reported in the item's result as the error
``sendEmail`` would have raised, with its field prefixed by the item's
position (``inputs.3.to``). Idempotency keys work per item, and two items of
one request with the same key behave as two calls would: the second returns
the first's message (or CONFLICT when its payload differs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.delivery.models import Message
from koomsg.core.errors import BadInput, KoomsgError
from koomsg.core.principal import Principal
from koomsg.core.tasks.transactional import EmailRequest, SendLookups, send_email

MAX_BATCH = 100


@dataclass(frozen=True)
class BatchItemOutcome:
    index: int
    message: Message | None = None
    error_code: str | None = None
    error_field: str | None = None
    error_message: str | None = None


def _item_field(index: int, field: str | None) -> str:
    # Core names sendEmail's fields relative to its input ("to", "params" or "input.to").
    relative = (field or "").removeprefix("input.")
    return f"inputs.{index}.{relative}" if relative else f"inputs.{index}"


async def send_emails(
    session: AsyncSession,
    *,
    principal: Principal,
    requests: Sequence[EmailRequest],
    now: datetime,
) -> list[BatchItemOutcome]:
    if not 1 <= len(requests) <= MAX_BATCH:
        raise BadInput("inputs", f"Send 1 to {MAX_BATCH} messages per request.")
    principal.require_enterprise()
    outcomes: list[BatchItemOutcome] = []
    lookups = SendLookups()
    for index, request in enumerate(requests):
        try:
            async with session.begin_nested():
                message = await send_email(
                    session, principal=principal, request=request, now=now, lookups=lookups
                )
        except KoomsgError as error:
            outcomes.append(
                BatchItemOutcome(
                    index=index,
                    error_code=error.code,
                    error_field=_item_field(index, error.field),
                    error_message=error.message,
                )
            )
        else:
            outcomes.append(BatchItemOutcome(index=index, message=message))
    return outcomes
