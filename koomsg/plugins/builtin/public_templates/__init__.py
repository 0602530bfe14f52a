"""The built-in public templates, offered through ``koomsg_public_templates``.

Each body is a 600 px, table-based layout with inline styles (what common
email clients render alike), stored as an HTML fragment beside this module
and set into the shared frame ``_frame.html``. A plugin offering a template
with one of these keys replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from koomsg.plugins import hookimpl
from koomsg.plugins.types import PublicTemplate

HERE = Path(__file__).parent

# key, title, subject, unsubscribe link
CATALOGUE = (
    ("welcome", "Welcome", "Welcome to {{company}}, {{name}}", False),
    (
        "verification_code",
        "Verification code",
        "Your {{company}} verification code: {{code}}",
        False,
    ),
    ("password_reset", "Password reset", "Reset your {{company}} password", False),
    ("order_notice", "Order notice", "Your {{company}} order {{order_no}}", False),
    ("newsletter", "Newsletter", "{{title}}", True),
)


def _body(key: str) -> str:
    frame = (HERE / "_frame.html").read_text(encoding="utf-8")
    return frame.replace("%CONTENT%", (HERE / f"{key}.html").read_text(encoding="utf-8").rstrip())


@cache
def _templates() -> tuple[PublicTemplate, ...]:
    return tuple(
        PublicTemplate(
            key=key,
            name=name,
            body_type="RICH_TEXT",
            body=_body(key),
            subject=subject,
            support_unsubscribe=unsubscribe,
        )
        for key, name, subject, unsubscribe in CATALOGUE
    )


@hookimpl
def koomsg_public_templates() -> Sequence[PublicTemplate]:
    return _templates()
