"""Public templates: offered by plugins, shown to every enterprise, copied to be edited.

Their ids are ``pub_<key>``: stable across restarts, so a client can keep one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from koomsg.core.errors import BadInput, KoomsgError, NotFound
from koomsg.core.pagination import Page, decode_cursor, encode_cursor, page_size
from koomsg.core.templates.content import prepare_body
from koomsg.core.templates.models import BodyType, TemplateStatus
from koomsg.plugins.types import PublicTemplate

log = logging.getLogger(__name__)
PUBLIC_PREFIX = "pub_"
# Public templates have no creation row; one fixed date keeps the "created" filter meaningful.
PUBLIC_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PublicTemplateView:
    """A public template shaped like a saved one (same attribute names)."""

    id: str
    key: str
    name: str
    body_type: BodyType
    body: str
    params: list[str]
    support_unsubscribe: bool
    subject: str
    status: TemplateStatus = TemplateStatus.APPROVED
    review_comment: str | None = None
    enterprise_id: str | None = None
    created_at: datetime = field(default=PUBLIC_CREATED_AT)
    public: bool = True
    # Built-ins are never edited: one revision, approved.
    revision: int = 1
    approved_revision: int | None = 1


def is_public_id(template_id: str) -> bool:
    return template_id.startswith(PUBLIC_PREFIX)


@lru_cache(maxsize=256)
def _view(template: PublicTemplate) -> PublicTemplateView:
    content = prepare_body(template.body, BodyType(template.body_type))
    return PublicTemplateView(
        id=f"{PUBLIC_PREFIX}{template.key}",
        key=template.key,
        name=template.name,
        body_type=content.body_type,
        body=content.body,
        params=content.params,
        support_unsubscribe=template.support_unsubscribe,
        subject=template.subject,
    )


def public_views(offered: Mapping[str, PublicTemplate]) -> list[PublicTemplateView]:
    """Every valid public template, in the order plugins offered them."""
    views = []
    for key, template in offered.items():
        try:
            views.append(_view(template))
        except (KoomsgError, ValueError) as exc:
            # One plugin's broken template must not hide everyone else's.
            log.warning("public template %r skipped: %s", key, exc)
    return views


def get_public(
    offered: Mapping[str, PublicTemplate], template_id: str, *, field: str = "id"
) -> PublicTemplateView:
    template = offered.get(template_id.removeprefix(PUBLIC_PREFIX))
    if template is None:
        raise NotFound("no such public template", field=field)
    try:
        return _view(template)
    except (KoomsgError, ValueError):
        raise NotFound("no such public template", field=field) from None


LISTING = "public_template"


def paginate_list(
    items: Sequence[PublicTemplateView], *, first: int | None, after: str | None
) -> Page[PublicTemplateView]:
    """One page of an in-memory list, with the same cursors as ``paginate``."""
    size = page_size(first)
    start = 0
    if after:
        ids = [item.id for item in items]
        cursor = decode_cursor(after, LISTING)
        if cursor not in ids:
            raise BadInput("after", "not a cursor returned by this API")
        start = ids.index(cursor) + 1
    chunk = list(items[start : start + size])
    return Page(
        items=chunk,
        cursors=[encode_cursor(item.id, LISTING) for item in chunk],
        has_next_page=start + size < len(items),
        has_previous_page=bool(after),
        total_count=len(items),
    )
