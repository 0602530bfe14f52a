"""Template revisions: every edit adds an immutable one; sends use the approved one.

A template row mirrors its latest revision (what the enterprise edits and
sees); ``approved_revision`` names what tasks and ``sendEmail`` send. An edit
held for review therefore never reaches a recipient, while the revision
approved before it keeps sending.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.errors import NotFound, PreconditionFailed
from koomsg.core.templates.content import Content
from koomsg.core.templates.models import BodyType, Template, TemplateRevision, TemplateStatus


@dataclass(frozen=True)
class SendableTemplate:
    """What a send uses: the template's id and name with its approved revision's content."""

    id: str
    name: str
    revision: int
    body_type: BodyType
    body: str
    params: list[str]
    support_unsubscribe: bool


def first_revision(template: Template) -> TemplateRevision:
    """Revision 1 of a template being created, from the content it was created with."""
    template.revision = 1
    return _revision_of(template)


def _revision_of(template: Template) -> TemplateRevision:
    return TemplateRevision(
        template_id=template.id,
        revision=template.revision,
        enterprise_id=template.enterprise_id,
        body_type=template.body_type,
        body=template.body,
        params=list(template.params),
        support_unsubscribe=template.support_unsubscribe,
        created_at=template.updated_at,
    )


async def add_revision(
    session: AsyncSession, *, template: Template, content: Content, support_unsubscribe: bool
) -> TemplateRevision:
    """The next revision of ``template`` with ``content``, mirrored on the template row.

    The number is taken by one conditional UPDATE, so two concurrent edits get two
    numbers (the second waits for the first's row lock) instead of colliding.
    """
    bumped = await session.execute(
        update(Template)
        .where(col(Template.id) == template.id)
        .values(revision=col(Template.revision) + 1)
        .returning(col(Template.revision))
    )
    number = int(bumped.scalar_one())
    await session.refresh(template)
    template.revision = number
    template.updated_at = utcnow()
    template.body_type = content.body_type
    template.body = content.body
    template.params = content.params
    template.support_unsubscribe = support_unsubscribe
    revision = _revision_of(template)
    session.add(template)
    session.add(revision)
    await session.flush()
    return revision


async def get_revision(
    session: AsyncSession, *, template: Template, revision: int | None, field: str = "revision"
) -> TemplateRevision:
    """A revision of ``template`` (None: the latest); NOT_FOUND naming ``field`` if absent."""
    number = template.revision if revision is None else revision
    found = await session.get(TemplateRevision, (template.id, number))
    if found is None:
        raise NotFound(f"the template has no revision {number}", field=field)
    return found


async def sendable(session: AsyncSession, *, template: Template) -> SendableTemplate:
    """The approved revision's content; PRECONDITION_FAILED if none was ever approved."""
    if template.approved_revision is None:
        raise PreconditionFailed(
            "this template has no approved revision yet (it is "
            f"{template.status}): only approved templates can be used to send",
            field="templateId",
        )
    approved = await get_revision(
        session, template=template, revision=template.approved_revision, field="templateId"
    )
    assert approved.status == TemplateStatus.APPROVED
    return SendableTemplate(
        id=template.id,
        name=template.name,
        revision=approved.revision,
        body_type=BodyType(approved.body_type),
        body=approved.body,
        params=list(approved.params),
        support_unsubscribe=approved.support_unsubscribe,
    )


async def revisions_for(
    session: AsyncSession, template_ids: Sequence[str]
) -> dict[str, list[TemplateRevision]]:
    """Each template's revisions, newest first (templates without any map to [])."""
    found: dict[str, list[TemplateRevision]] = defaultdict(list)
    statement = (
        select(TemplateRevision)
        .where(col(TemplateRevision.template_id).in_(list(template_ids)))
        .order_by(col(TemplateRevision.template_id), col(TemplateRevision.revision).desc())
    )
    for row in (await session.exec(statement)).all():
        found[row.template_id].append(row)
    return {template_id: found.get(template_id, []) for template_id in template_ids}


async def delete_revisions(session: AsyncSession, *, template_id: str) -> None:
    """Before the template row goes (the revisions reference it)."""
    await session.execute(
        delete(TemplateRevision).where(col(TemplateRevision.template_id) == template_id)
    )
