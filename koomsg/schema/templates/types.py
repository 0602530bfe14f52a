from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from koomsg.core.templates import models
from koomsg.core.templates.service import RenderedEmail as CoreRenderedEmail
from koomsg.core.templates.service import TemplateFilter as CoreTemplateFilter
from koomsg.schema.common import Node
from koomsg.schema.context import Info, loader
from koomsg.schema.templates import loaders


@strawberry.enum(
    description="RICH_TEXT: sanitised HTML sent with a text alternative. PLAIN_TEXT: sent as is."
)
class BodyType(enum.StrEnum):
    RICH_TEXT = "RICH_TEXT"
    PLAIN_TEXT = "PLAIN_TEXT"


@strawberry.enum(
    description="How a template (its latest revision) or one revision was reviewed. APPROVING "
    "waits for an operator, APPROVED may send, REJECTED says why in reviewComment. A template "
    "sends its approvedRevision whatever the status of a later edit."
)
class TemplateStatus(enum.StrEnum):
    APPROVING = "APPROVING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


@strawberry.type(
    description="One immutable version of a template's content (every edit makes one) and "
    "how it was reviewed."
)
class TemplateRevision:
    revision: int = strawberry.field(
        description="1 for the content the template was created with, one more for each edit."
    )
    body_type: BodyType
    body: str
    params: list[str]
    support_unsubscribe: bool
    status: TemplateStatus
    review_comment: str | None = strawberry.field(
        description="Why the revision was rejected, or the approver's note."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> TemplateRevision:
        """From a saved revision, or a public template (one revision, same attribute names)."""
        return cls(
            revision=getattr(row, "revision", 1),
            body_type=BodyType(row.body_type),
            body=row.body,
            params=list(row.params),
            support_unsubscribe=row.support_unsubscribe,
            status=TemplateStatus(row.status),
            review_comment=row.review_comment,
            created_at=row.created_at,
        )


@strawberry.type(
    description="The content of an email: a title, a body with {{parameters}}, review status. "
    "Every edit makes a new revision; sends use the approved one (approvedRevision), so an "
    "edit under review never reaches a recipient."
)
class Template(Node):
    id: strawberry.ID
    name: str = strawberry.field(description="The template title.")
    body_type: BodyType
    body: str = strawberry.field(
        description="As saved, in the latest revision: rich bodies are sanitised "
        "(no scripts, event handlers or javascript: links)."
    )
    params: list[str] = strawberry.field(
        description="Dynamic parameter names ({{name}} in the body), in order of first use."
    )
    support_unsubscribe: bool = strawberry.field(
        description="Delivery adds an unsubscribe link and List-Unsubscribe headers."
    )
    public: bool = strawberry.field(
        description="A built-in template: preview or copy it, not edit it."
    )
    status: TemplateStatus = strawberry.field(description="The latest revision's review status.")
    review_comment: str | None = strawberry.field(
        description="Why the latest revision was rejected, or the approver's note."
    )
    enterprise_id: strawberry.ID | None = strawberry.field(
        description="The owning enterprise (what operators review); null for public templates."
    )
    revision: int = strawberry.field(
        description="The latest revision: what body, params and status show."
    )
    approved_revision: int | None = strawberry.field(
        description="The revision tasks and sendEmail use: the newest approved one; null until "
        "one is approved (the template cannot send yet)."
    )
    created_at: datetime
    row: strawberry.Private[Any]

    @strawberry.field(description="Every revision, newest first.")
    async def revisions(self, info: Info) -> list[TemplateRevision]:
        if self.public:
            return [TemplateRevision.from_row(self.row)]
        found = await loader(info, "templates.revisions", loaders.revisions_by_template).load(
            str(self.id)
        )
        return [TemplateRevision.from_row(r) for r in found]

    @classmethod
    def from_row(cls, row: Any) -> Template:
        """From a saved template or a public one (same attribute names; one revision)."""
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            body_type=BodyType(row.body_type),
            body=row.body,
            params=list(row.params),
            support_unsubscribe=row.support_unsubscribe,
            public=getattr(row, "public", False),
            status=TemplateStatus(row.status),
            review_comment=row.review_comment,
            enterprise_id=strawberry.ID(row.enterprise_id) if row.enterprise_id else None,
            revision=row.revision,
            approved_revision=row.approved_revision,
            created_at=row.created_at,
            row=row,
        )


@strawberry.type(description="A template rendered as a recipient would receive it.")
class RenderedEmail:
    subject: str | None
    html: str | None = strawberry.field(description="The HTML part; null for plain-text templates.")
    text: str = strawberry.field(
        description="The plain text (for rich text: the generated text alternative)."
    )

    @classmethod
    def from_core(cls, rendered: CoreRenderedEmail) -> RenderedEmail:
        return cls(subject=rendered.subject, html=rendered.html, text=rendered.text)


@strawberry.input(description="Narrow a template list; all given conditions must hold.")
class TemplateFilter:
    name: str | None = strawberry.field(default=None, description="Part of the title, any case.")
    id: strawberry.ID | None = None
    status: TemplateStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def to_core(self) -> CoreTemplateFilter:
        return CoreTemplateFilter(
            name=self.name,
            id=self.id,
            status=models.TemplateStatus(self.status) if self.status else None,
            created_from=self.created_from,
            created_to=self.created_to,
        )


def core_filter(filter: TemplateFilter | None) -> CoreTemplateFilter | None:
    return filter.to_core() if filter is not None else None


@strawberry.input
class CreateTemplateInput:
    name: str = strawberry.field(description="The template title, 1 to 128 characters.")
    body_type: BodyType
    body: str | None = strawberry.field(
        default=None, description="Required unless htmlFile is given."
    )
    html_file: Upload | None = strawberry.field(
        default=None,
        description="RICH_TEXT only: an .html file of at most 2 MB (UTF-8 or a declared charset); "
        "replaces body.",
    )
    support_unsubscribe: bool = False


@strawberry.input(description="What to change; fields left out keep their value.")
class UpdateTemplateInput:
    name: str | None = None
    body_type: BodyType | None = strawberry.field(
        default=None, description="Changing it needs a new body or htmlFile."
    )
    body: str | None = None
    html_file: Upload | None = None
    support_unsubscribe: bool | None = None
