"""``sendEmail``: one transactional message through the API (send method API, no task).

Parameters come as a JSON object: every parameter of the template is
required; keys the template does not define are ignored (and not stored), so
a caller may send one superset of values to several templates. With an
idempotency key, the same key from the same enterprise within 24 hours
returns the first message instead of sending again; the same key with
another payload is CONFLICT.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.delivery.models import IdempotencyKey, Message, MessageStatus, SendMethod
from koomsg.core.errors import BadInput, Conflict
from koomsg.core.idempotency import IDEMPOTENCY_WINDOW, clean_key
from koomsg.core.ids import new_id
from koomsg.core.principal import Principal
from koomsg.core.recipients.service import fold
from koomsg.core.tasks.addresses import normalise_recipient
from koomsg.core.tasks.service import (
    clean_subject,
    sendable_sender,
    suppressed_reason,
    suppression_reasons,
)
from koomsg.core.templates.params import MAX_PARAM_VALUE, parse_params
from koomsg.core.templates.render import compile_template, render_subject, too_big
from koomsg.core.templates.service import get_sendable_template
from koomsg.core.tenancy.ownership import owned


@dataclass(frozen=True)
class EmailRequest:
    template_id: str
    sender_address_id: str
    subject: str
    to: str
    params: Any = None
    idempotency_key: str | None = None


@dataclass
class SendLookups:
    """Templates and senders already found sendable in this request: a batch of 100 messages
    to one template looks it up once, not a hundred times."""

    templates: dict[str, Any] = field(default_factory=dict)
    senders: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def param_values(
    params: Sequence[str], given: Any, subject_params: Sequence[str]
) -> dict[str, str]:
    """The template's parameter values as text; BAD_USER_INPUT "params" when one is missing."""
    from koomsg.core.delivery.mime import check_header_value

    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise BadInput("params", 'params is an object of parameter values, e.g. {"name": "Ann"}')
    missing = [name for name in params if given.get(name) is None]
    if missing:
        raise BadInput(
            "params", f"missing value(s) for the template parameter(s) {', '.join(missing)}"
        )
    values: dict[str, str] = {}
    for name in params:
        value = given[name]
        if isinstance(value, dict | list):
            raise BadInput("params", f"the value of {name} must be text or a number")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if len(text) > MAX_PARAM_VALUE:
            raise BadInput(
                "params", f"the value of {name} has more than {MAX_PARAM_VALUE} characters"
            )
        if name in subject_params:
            # It goes into the Subject header.
            check_header_value(text, field="params")
        values[name] = text
    return values


def request_hash(request: EmailRequest) -> str:
    """What a key stands for: the same key with another payload is a client bug."""
    payload = {
        "templateId": request.template_id,
        "senderAddressId": request.sender_address_id,
        "subject": request.subject,
        "to": request.to.strip().casefold(),
        "params": request.params,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _replay(
    session: AsyncSession, *, principal: Principal, key: str, digest: str, now: datetime
) -> Message | None:
    enterprise_id = principal.require_enterprise()
    entry = (
        await session.exec(
            select(IdempotencyKey).where(
                IdempotencyKey.enterprise_id == enterprise_id, IdempotencyKey.key == key
            )
        )
    ).first()
    if entry is None:
        return None
    if entry.created_at <= now - IDEMPOTENCY_WINDOW:
        # The window has passed: the key is free again.
        await session.delete(entry)
        await session.flush()
        return None
    if entry.request_hash is not None and entry.request_hash != digest:
        raise Conflict(
            "this idempotency key was used for another email (other template, sender, subject, "
            "recipient or params): use a new key for a new email",
            # The issue's and the hosted APIs' name for it: the key inside sendEmail's input.
            field="input.idempotencyKey",
        )
    return await owned(
        session,
        Message,
        entry.message_id,
        principal=principal,
        message="the message of this idempotency key no longer exists",
        field="idempotencyKey",
    )


async def _claim_key(
    session: AsyncSession,
    *,
    principal: Principal,
    key: str,
    digest: str,
    message_id: str,
    now: datetime,
) -> Message | None:
    """Record the key for ``message_id``; a concurrent send that recorded it first wins."""
    enterprise_id = principal.require_enterprise()
    try:
        async with session.begin_nested():
            session.add(
                IdempotencyKey(
                    enterprise_id=enterprise_id,
                    key=key,
                    message_id=message_id,
                    request_hash=digest,
                    created_at=now,
                )
            )
            await session.flush()
    except IntegrityError:
        return await _replay(session, principal=principal, key=key, digest=digest, now=now)
    return None


async def send_email(
    session: AsyncSession,
    *,
    principal: Principal,
    request: EmailRequest,
    now: datetime,
    lookups: SendLookups | None = None,
) -> Message:
    enterprise_id = principal.require_enterprise()
    key = clean_key(request.idempotency_key)
    digest = request_hash(request)
    if key is not None:
        first = await _replay(session, principal=principal, key=key, digest=digest, now=now)
        if first is not None:
            return first
    lookups = lookups or SendLookups()
    template = lookups.templates.get(request.template_id)
    if template is None:
        template = await get_sendable_template(
            session, principal=principal, template_id=request.template_id
        )
        lookups.templates[request.template_id] = template
    sender = lookups.senders.get(request.sender_address_id)
    if sender is None:
        sender = await sendable_sender(
            session, principal=principal, address_id=request.sender_address_id
        )
        lookups.senders[request.sender_address_id] = sender
    address, domain = sender
    subject = clean_subject(request.subject, template.params)
    recipient = normalise_recipient(request.to, field="to")
    values = param_values(template.params, request.params, parse_params(subject, field="subject"))
    problem = too_big(compile_template(template.body, template.body_type), subject, values)
    if problem:
        raise BadInput("params", problem)
    reason = (
        await suppression_reasons(session, enterprise_id=enterprise_id, addresses=[recipient])
    ).get(fold(recipient))
    message_id = new_id("msg")
    if key is not None:
        winner = await _claim_key(
            session,
            principal=principal,
            key=key,
            digest=digest,
            message_id=message_id,
            now=now,
        )
        if winner is not None:
            return winner
    message = Message(
        id=message_id,
        enterprise_id=enterprise_id,
        task_id=None,
        send_method=SendMethod.API,
        template_id=template.id,
        template_name=template.name,
        template_revision=template.revision,
        sender_address_id=address.id,
        sender=f"{address.prefix}@{domain.name}",
        recipient=recipient,
        subject=render_subject(subject, values),
        params=values,
        status=MessageStatus.REJECTED if reason else MessageStatus.TO_SEND,
        dispatch_after=None if reason else now,
        created_at=now,
        finished_at=now if reason else None,
        failure_reason=suppressed_reason(reason) if reason else None,
    )
    session.add(message)
    await session.flush()
    return message
