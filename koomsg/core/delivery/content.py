"""What every message of one task (or one API template revision/sender pair) shares.

Built once per worker and reused for a short while: the compiled template,
the MIME skeleton with the attachments encoded, and the DKIM key. A domain
that fails its re-check stops sending within ``CONTENT_TTL`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.config import Settings
from koomsg.core.addresses.models import SenderAddress
from koomsg.core.delivery.mime import Attachment, MessageSkeleton
from koomsg.core.delivery.models import Message
from koomsg.core.domains.models import SenderDomain
from koomsg.core.domains.service import SigningKey, signing_key_for
from koomsg.core.errors import KoomsgError
from koomsg.core.tasks.models import SendingTask, TaskAttachment
from koomsg.core.templates.models import Template, TemplateRevision
from koomsg.core.templates.render import Compiled, compile_template

CONTENT_TTL = 30.0


@dataclass(frozen=True)
class Content:
    enterprise_id: str
    task_id: str | None
    compiled: Compiled
    skeleton: MessageSkeleton
    sender_address: str
    sender_domain: str
    signing_key: SigningKey | None
    # Why these messages must not be sent (e.g. the domain lost its verification).
    refusal: str | None
    built_at: float

    @property
    def fresh(self) -> bool:
        return time.monotonic() - self.built_at < CONTENT_TTL


def content_key(message: Message) -> str:
    """A task's content never changes (it snapshots one revision); an API message's is its
    template's revision's, so two revisions of one template never share an entry."""
    if message.task_id:
        return f"task:{message.task_id}"
    return f"api:{message.template_id}:{message.template_revision}:{message.sender_address_id}"


async def _signing(
    session: AsyncSession, settings: Settings, domain_id: str
) -> tuple[SigningKey | None, str | None]:
    try:
        return await signing_key_for(session, settings=settings, domain_id=domain_id), None
    except KoomsgError as exc:
        return None, exc.message


async def build_content(session: AsyncSession, *, settings: Settings, message: Message) -> Content:
    if message.task_id:
        return await _task_content(session, settings, message.task_id)
    return await _api_content(session, settings, message)


async def _task_content(session: AsyncSession, settings: Settings, task_id: str) -> Content:
    task = await session.get(SendingTask, task_id)
    assert task is not None
    rows = (
        await session.exec(select(TaskAttachment).where(TaskAttachment.task_id == task_id))
    ).all()
    attachments = [
        Attachment(filename=a.filename, content_type=a.content_type, data=a.data) for a in rows
    ]
    key, refusal = await _signing(session, settings, task.sender_domain_id)
    return Content(
        enterprise_id=task.enterprise_id,
        task_id=task.id,
        compiled=compile_template(
            task.body, task.body_type, support_unsubscribe=task.support_unsubscribe
        ),
        skeleton=MessageSkeleton.build(
            sender_address=task.sender_address,
            sender_alias=task.sender_alias,
            attachments=attachments,
            feedback_id=f"{task.id}:{task.enterprise_id}:koomsg",
        ),
        sender_address=task.sender_address,
        sender_domain=task.sender_address.rpartition("@")[2],
        signing_key=key,
        refusal=refusal,
        built_at=time.monotonic(),
    )


async def _revision(session: AsyncSession, message: Message) -> TemplateRevision | None:
    """The revision the API message was accepted with; for rows from before revisions, the
    one approved now (never an edit under review)."""
    number = message.template_revision
    if number is None:
        template = await session.get(Template, message.template_id)
        number = template.approved_revision if template is not None else None
    if number is None:
        return None
    return await session.get(TemplateRevision, (message.template_id, number))


async def _api_content(session: AsyncSession, settings: Settings, message: Message) -> Content:
    revision = await _revision(session, message)
    address = await session.get(SenderAddress, message.sender_address_id)
    domain = await session.get(SenderDomain, address.domain_id) if address is not None else None
    refusal = None
    if revision is None or address is None or domain is None:
        refusal = "the template or sender address was deleted before the message was sent"
        key = None
    else:
        key, refusal = await _signing(session, settings, domain.id)
    body = revision.body if revision is not None else ""
    body_type = revision.body_type if revision is not None else "PLAIN_TEXT"
    return Content(
        enterprise_id=message.enterprise_id,
        task_id=None,
        compiled=compile_template(
            body, body_type, support_unsubscribe=bool(revision and revision.support_unsubscribe)
        ),
        skeleton=MessageSkeleton.build(
            sender_address=message.sender,
            sender_alias=address.alias if address is not None else None,
            attachments=(),
            feedback_id=f"api:{message.enterprise_id}:koomsg",
        ),
        sender_address=message.sender,
        sender_domain=message.sender.rpartition("@")[2],
        signing_key=key,
        refusal=refusal,
        built_at=time.monotonic(),
    )
