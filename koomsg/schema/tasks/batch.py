"""``sendEmails``: the batch form of ``sendEmail``, one result per item."""

from __future__ import annotations

import strawberry

from koomsg.core.clock import utcnow
from koomsg.core.tasks import batch_send
from koomsg.schema.context import Info
from koomsg.schema.tasks.types import SendEmailInput, SendingDetail


@strawberry.type(description="What became of one item of `sendEmails`.")
class SendEmailResult:
    index: int = strawberry.field(description="The item's position in `inputs`.")
    detail: SendingDetail | None = strawberry.field(
        default=None, description="The message, when the item was accepted."
    )
    error_code: str | None = strawberry.field(
        default=None, description="As `extensions.code` would be, when the item was refused."
    )
    error_field: str | None = strawberry.field(
        default=None, description='The refused input, e.g. "inputs.3.to".'
    )
    error_message: str | None = None


@strawberry.type
class BatchSendMutation:
    @strawberry.mutation(
        description="Send 1 to 100 transactional emails in one request. Each item is accepted "
        "or refused on its own (one refused item does not refuse the others) and idempotency "
        "keys work per item, as with sendEmail."
    )
    async def send_emails(self, info: Info, inputs: list[SendEmailInput]) -> list[SendEmailResult]:
        requests = [item.to_request() for item in inputs]
        async with info.context.write("KooMessage:email:send") as (session, principal):
            outcomes = await batch_send.send_emails(
                session, principal=principal, requests=requests, now=utcnow()
            )
        return [
            SendEmailResult(
                index=outcome.index,
                detail=SendingDetail.from_row(outcome.message) if outcome.message else None,
                error_code=outcome.error_code,
                error_field=outcome.error_field,
                error_message=outcome.error_message,
            )
            for outcome in outcomes
        ]
