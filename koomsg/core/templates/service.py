"""An enterprise's templates: create, edit, copy, delete, list, preview, and use to send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pluggy
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.templates.content import MAX_NAME, HtmlFile, clean_name, prepare_body
from koomsg.core.templates.models import BodyType, Template, TemplateStatus
from koomsg.core.templates.params import MAX_PARAM_VALUE, validate_subject
from koomsg.core.templates.public import (
    PublicTemplateView,
    get_public,
    is_public_id,
    paginate_list,
    public_views,
)
from koomsg.core.templates.render import compile_template, render_subject, too_big
from koomsg.core.templates.review import review_by_policy
from koomsg.core.templates.revisions import (
    SendableTemplate,
    add_revision,
    delete_revisions,
    first_revision,
    sendable,
)
from koomsg.core.tenancy.ownership import owned
from koomsg.plugins.types import PublicTemplate

# An async check run before a template is deleted (given its id); it raises Conflict
# naming what still uses the template. ``koomsg.core.flows`` lists them.
DeleteGuard = Callable[[AsyncSession, str], Awaitable[None]]

PublicTemplates = Mapping[str, PublicTemplate]


@dataclass(frozen=True)
class TemplateFilter:
    name: str | None = None
    id: str | None = None
    status: TemplateStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def matches(self, view: PublicTemplateView) -> bool:
        return (
            (not self.name or self.name.strip().lower() in view.name.lower())
            and (not self.id or self.id == view.id)
            and (self.status is None or self.status == view.status)
            and (self.created_from is None or view.created_at >= self.created_from)
            and (self.created_to is None or view.created_at <= self.created_to)
        )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str | None
    html: str | None
    text: str


async def get_template(
    session: AsyncSession, *, principal: Principal, template_id: str, field: str = "id"
) -> Template:
    return await owned(
        session, Template, template_id, principal=principal, message="no such template", field=field
    )


async def get_sendable_template(
    session: AsyncSession, *, principal: Principal, template_id: str
) -> SendableTemplate:
    """What a task or an API send uses: the caller's own template, at its approved revision
    (an edit under review never sends; a template never approved cannot)."""
    template = await get_template(
        session, principal=principal, template_id=template_id, field="templateId"
    )
    return await sendable(session, template=template)


async def sending_params(
    session: AsyncSession, *, principal: Principal, template_id: str
) -> list[str]:
    """The parameters a recipient file for this template needs: those of the revision a
    task would send (the approved one), else of the latest."""
    template = await get_template(
        session, principal=principal, template_id=template_id, field="templateId"
    )
    if template.approved_revision is None:
        return list(template.params)
    return list((await sendable(session, template=template)).params)


async def create_template(
    session: AsyncSession,
    *,
    principal: Principal,
    plugins: pluggy.PluginManager,
    name: str,
    body_type: BodyType,
    body: str | None,
    html_file: HtmlFile | None = None,
    support_unsubscribe: bool = False,
) -> Template:
    enterprise_id = principal.require_enterprise()
    clean = clean_name(name)
    content = prepare_body(body, BodyType(body_type), html_file)
    template = Template(
        enterprise_id=enterprise_id,
        name=clean,
        body_type=content.body_type,
        body=content.body,
        params=content.params,
        support_unsubscribe=support_unsubscribe,
    )
    return await _save_new(session, plugins, template)


async def _save_new(
    session: AsyncSession, plugins: pluggy.PluginManager, template: Template
) -> Template:
    """Insert a new template with its revision 1, and review that revision."""
    revision = first_revision(template)
    session.add(template)
    await session.flush()
    session.add(revision)
    await session.flush()
    await review_by_policy(session, plugins=plugins, template=template, revision=revision)
    return template


async def update_template(
    session: AsyncSession,
    *,
    principal: Principal,
    plugins: pluggy.PluginManager,
    template_id: str,
    name: str | None = None,
    body_type: BodyType | None = None,
    body: str | None = None,
    html_file: HtmlFile | None = None,
    support_unsubscribe: bool | None = None,
) -> Template:
    """Change what is given as a new revision, reviewed like a new template; until it is
    approved, sends keep using the approved revision."""
    template = await get_template(session, principal=principal, template_id=template_id)
    clean = clean_name(name) if name is not None else template.name
    new_type = BodyType(body_type) if body_type is not None else BodyType(template.body_type)
    if body is None and html_file is None:
        if new_type != template.body_type:
            raise BadInput("body", "changing the body type needs a new body")
        body = template.body
    content = prepare_body(body, new_type, html_file)
    unsubscribe = (
        template.support_unsubscribe if support_unsubscribe is None else support_unsubscribe
    )
    revision = await add_revision(
        session, template=template, content=content, support_unsubscribe=unsubscribe
    )
    template.name = clean
    session.add(template)
    await session.flush()
    await review_by_policy(session, plugins=plugins, template=template, revision=revision)
    return template


def _copy_name(name: str | None, source_name: str) -> str:
    if name is not None:
        return clean_name(name)
    suffix = " (copy)"
    return clean_name(source_name[: MAX_NAME - len(suffix)] + suffix)


async def copy_template(
    session: AsyncSession,
    *,
    principal: Principal,
    plugins: pluggy.PluginManager,
    public: PublicTemplates,
    template_id: str,
    name: str | None = None,
) -> Template:
    """A new, editable template of the caller's enterprise; reviewed like any new one."""
    enterprise_id = principal.require_enterprise()
    source: Template | PublicTemplateView
    if is_public_id(template_id):
        source = get_public(public, template_id)
    else:
        source = await get_template(session, principal=principal, template_id=template_id)
    template = Template(
        enterprise_id=enterprise_id,
        name=_copy_name(name, source.name),
        body_type=source.body_type,
        body=source.body,
        params=list(source.params),
        support_unsubscribe=source.support_unsubscribe,
        copied_from=source.id,
    )
    return await _save_new(session, plugins, template)


async def delete_template(
    session: AsyncSession, *, principal: Principal, template_id: str, guards: Sequence[DeleteGuard]
) -> str:
    template = await get_template(session, principal=principal, template_id=template_id)
    for guard in guards:
        await guard(session, template.id)
    await delete_revisions(session, template_id=template.id)
    await session.delete(template)
    await session.flush()
    return template_id


async def list_templates(
    session: AsyncSession,
    *,
    principal: Principal,
    filter: TemplateFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[Template]:
    statement = select(Template).where(Template.enterprise_id == principal.require_enterprise())
    f = filter or TemplateFilter()
    if f.name and f.name.strip():
        needle = f.name.strip().lower()
        statement = statement.where(func.lower(Template.name).contains(needle, autoescape=True))
    if f.id:
        statement = statement.where(Template.id == f.id)
    if f.status is not None:
        statement = statement.where(Template.status == f.status)
    if f.created_from is not None:
        statement = statement.where(col(Template.created_at) >= f.created_from)
    if f.created_to is not None:
        statement = statement.where(col(Template.created_at) <= f.created_to)
    return await paginate(session, statement, Template.id, first=first, after=after)


def list_public_templates(
    public: PublicTemplates,
    *,
    filter: TemplateFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[PublicTemplateView]:
    f = filter or TemplateFilter()
    return paginate_list(
        [v for v in public_views(public) if f.matches(v)], first=first, after=after
    )


def _sample_values(params: list[str], given: Any) -> dict[str, str]:
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise BadInput("params", 'params is an object of parameter values, e.g. {"name": "Ann"}')
    unknown = [str(k) for k in given if k not in params]
    if unknown:
        raise BadInput("params", f"the template has no parameter {', '.join(unknown)}")
    values = {}
    for name in params:
        value = given.get(name)
        if isinstance(value, dict | list):
            raise BadInput("params", f"the value of {name} must be text or a number")
        text = f"[{name}]" if value is None else str(value)  # missing ones show where they go
        if len(text) > MAX_PARAM_VALUE:
            raise BadInput(
                "params", f"the value of {name} has more than {MAX_PARAM_VALUE} characters"
            )
        values[name] = text
    return values


async def preview_template(
    session: AsyncSession,
    *,
    principal: Principal,
    public: PublicTemplates,
    template_id: str,
    params: Any = None,
    subject: str | None = None,
    public_url: str,
) -> RenderedEmail:
    """Render as delivery would, with sample values and a placeholder unsubscribe link."""
    source: Template | PublicTemplateView
    if is_public_id(template_id):
        principal.require_enterprise()
        source = get_public(public, template_id)
        if subject is None:
            subject = source.subject or None
    else:
        source = await get_template(session, principal=principal, template_id=template_id)
    values = _sample_values(list(source.params), params)
    rendered_subject = None
    if subject is not None:
        validate_subject(subject, source.params)
        rendered_subject = render_subject(subject, values)
    compiled = compile_template(
        source.body, source.body_type, support_unsubscribe=source.support_unsubscribe
    )
    problem = too_big(compiled, subject or "", values)
    if problem:
        raise BadInput("params", problem)
    parts = compiled.render(values, unsubscribe_url=f"{public_url.rstrip('/')}/u/preview")
    return RenderedEmail(subject=rendered_subject, html=parts.html, text=parts.text)
