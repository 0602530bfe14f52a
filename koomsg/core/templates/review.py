"""Template review: the plugin policy on every save, operators for what it holds."""

from __future__ import annotations

import pluggy
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput, NotFound, PreconditionFailed
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.templates.models import Template, TemplateReview, TemplateStatus
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
    status: TemplateStatus,
    comment: str | None,
    kind: str,
    who: str,
) -> None:
    now = utcnow()
    template.status = status
    template.review_comment = comment
    held = status is TemplateStatus.APPROVING
    template.reviewed_by = None if held else who
    template.reviewed_at = None if held else now
    session.add(template)
    session.add(
        TemplateReview(
            template_id=template.id,
            enterprise_id=template.enterprise_id,
            decision=status,
            comment=comment,
            reviewer_kind=kind,
            reviewer=who[:128],
            created_at=now,
        )
    )


async def review_by_policy(
    session: AsyncSession, *, plugins: pluggy.PluginManager, template: Template
) -> None:
    """Ask the ``koomsg_review_template`` plugins; nobody answering holds it for an operator."""
    enterprise = await get_enterprise(session, enterprise_id=template.enterprise_id)
    decision = await call_first(
        plugins,
        "koomsg_review_template",
        template=TemplateForReview(
            id=template.id,
            name=template.name,
            body_type=str(template.body_type),
            body=template.body,
            params=tuple(template.params),
            support_unsubscribe=template.support_unsubscribe,
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
    _record(session, template, status, comment, "POLICY", decision.reviewer or "policy")
    await session.flush()


async def _awaiting(session: AsyncSession, template_id: str) -> Template:
    template = await session.get(Template, template_id)
    if template is None:
        raise NotFound("no such template", field="id")
    if template.status != TemplateStatus.APPROVING:
        raise PreconditionFailed(
            f"the template is not awaiting review (it is {template.status})", field="id"
        )
    return template


def _comment(comment: str | None) -> str | None:
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise BadInput("comment", f"a review comment has at most {MAX_COMMENT} characters")
    return comment


async def approve_template(
    session: AsyncSession, *, principal: Principal, template_id: str, comment: str | None = None
) -> Template:
    """Operators: approve a template held for review (across enterprises)."""
    text = _comment(comment)
    template = await _awaiting(session, template_id)
    _record(session, template, TemplateStatus.APPROVED, text, str(principal.kind), principal.name)
    await session.flush()
    return template


async def reject_template(
    session: AsyncSession, *, principal: Principal, template_id: str, comment: str
) -> Template:
    """Operators: reject a held template; the comment tells the enterprise why."""
    text = _comment(comment)
    if text is None:
        raise BadInput("comment", "say why the template is rejected")
    template = await _awaiting(session, template_id)
    _record(session, template, TemplateStatus.REJECTED, text, str(principal.kind), principal.name)
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
