"""Template review, per revision: the plugin policy on every save, operators for what it holds."""

from __future__ import annotations

import pluggy
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput, NotFound, PreconditionFailed
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.templates.models import (
    Template,
    TemplateReview,
    TemplateRevision,
    TemplateStatus,
)
from koomsg.core.templates.revisions import get_revision
from koomsg.core.tenancy.ownership import could_name_a_row
from koomsg.core.tenancy.service import get_enterprise
from koomsg.plugins.manager import call_first
from koomsg.plugins.types import (
    EnterpriseInfo,
    ReviewDecision,
    ReviewOutcome,
    TemplateForReview,
)

MAX_COMMENT = 1024
_STATUS = {
    ReviewOutcome.APPROVE: TemplateStatus.APPROVED,
    ReviewOutcome.HOLD: TemplateStatus.APPROVING,
    ReviewOutcome.REJECT: TemplateStatus.REJECTED,
}


def _record(
    session: AsyncSession,
    template: Template,
    revision: TemplateRevision,
    decision: tuple[TemplateStatus, str | None],
    reviewer: tuple[str, str],
) -> None:
    """Decide on one revision; the template mirrors it if it is the latest, and an approval
    makes it what sends (unless a newer one was approved already)."""
    status, comment = decision
    kind, who = reviewer
    now = utcnow()
    held = status is TemplateStatus.APPROVING
    revision.status = status
    revision.review_comment = comment
    revision.reviewed_by = None if held else who[:128]
    revision.reviewed_at = None if held else now
    session.add(revision)
    if revision.revision == template.revision:
        template.status = status
        template.review_comment = comment
        template.reviewed_by = revision.reviewed_by
        template.reviewed_at = revision.reviewed_at
    if status is TemplateStatus.APPROVED:
        template.approved_revision = max(template.approved_revision or 0, revision.revision)
    session.add(template)
    session.add(
        TemplateReview(
            template_id=template.id,
            revision=revision.revision,
            enterprise_id=template.enterprise_id,
            decision=status,
            comment=comment,
            reviewer_kind=kind,
            reviewer=who[:128],
            created_at=now,
        )
    )


async def review_by_policy(
    session: AsyncSession,
    *,
    plugins: pluggy.PluginManager,
    template: Template,
    revision: TemplateRevision,
) -> None:
    """Ask the ``koomsg_review_template`` plugins about a new revision; nobody answering
    holds it for an operator."""
    enterprise = await get_enterprise(session, enterprise_id=template.enterprise_id)
    decision = await call_first(
        plugins,
        "koomsg_review_template",
        template=TemplateForReview(
            id=template.id,
            name=template.name,
            body_type=str(revision.body_type),
            body=revision.body,
            params=tuple(revision.params),
            support_unsubscribe=revision.support_unsubscribe,
            revision=revision.revision,
        ),
        enterprise=EnterpriseInfo(
            id=enterprise.id,
            name=enterprise.name,
            industry_class=str(enterprise.industry_class),
            real_name_verified=enterprise.real_name_verified,
        ),
    )
    if decision is None:
        decision = ReviewDecision(
            ReviewOutcome.HOLD, "no review policy answered", reviewer="koomsg"
        )
    status = _STATUS[ReviewOutcome(decision.outcome)]
    reason = (decision.reason or "")[:MAX_COMMENT] or None
    comment = reason if status is TemplateStatus.REJECTED else None
    _record(
        session, template, revision, (status, comment), ("POLICY", decision.reviewer or "policy")
    )
    await session.flush()


async def _awaiting(
    session: AsyncSession, template_id: str, revision: int | None
) -> tuple[Template, TemplateRevision]:
    # Locked: an edit committing meanwhile would otherwise have its status (and an earlier
    # approval its approved_revision) overwritten by this decision.
    template = (
        await session.get(Template, template_id, with_for_update=True, populate_existing=True)
        if could_name_a_row(Template, template_id)
        else None
    )
    if template is None:
        raise NotFound("no such template", field="id")
    found = await get_revision(session, template=template, revision=revision)
    if found.status != TemplateStatus.APPROVING:
        raise PreconditionFailed(
            f"revision {found.revision} of the template is not awaiting review "
            f"(it is {found.status})",
            field="revision" if revision is not None else "id",
        )
    return template, found


def _comment(comment: str | None) -> str | None:
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise BadInput("comment", f"a review comment has at most {MAX_COMMENT} characters")
    return comment


async def approve_template(
    session: AsyncSession,
    *,
    principal: Principal,
    template_id: str,
    comment: str | None = None,
    revision: int | None = None,
) -> Template:
    """Operators: approve a revision held for review (None: the latest), across enterprises;
    from then on new sends use it."""
    text = _comment(comment)
    template, found = await _awaiting(session, template_id, revision)
    who = (str(principal.kind), principal.name)
    _record(session, template, found, (TemplateStatus.APPROVED, text), who)
    await session.flush()
    return template


async def reject_template(
    session: AsyncSession,
    *,
    principal: Principal,
    template_id: str,
    comment: str,
    revision: int | None = None,
) -> Template:
    """Operators: reject a held revision (None: the latest); the comment tells the enterprise
    why. An earlier approved revision keeps sending."""
    text = _comment(comment)
    if text is None:
        raise BadInput("comment", "say why the template is rejected")
    template, found = await _awaiting(session, template_id, revision)
    who = (str(principal.kind), principal.name)
    _record(session, template, found, (TemplateStatus.REJECTED, text), who)
    await session.flush()
    return template


async def list_awaiting_review(
    session: AsyncSession, *, first: int | None, after: str | None
) -> Page[Template]:
    statement = select(Template).where(Template.status == TemplateStatus.APPROVING)
    return await paginate(session, statement, Template.id, first=first, after=after)


async def review_history(session: AsyncSession, *, template_id: str) -> list[TemplateReview]:
    statement = select(TemplateReview).where(TemplateReview.template_id == template_id)
    return list((await session.exec(statement.order_by(TemplateReview.id))).all())  # type: ignore[arg-type]
