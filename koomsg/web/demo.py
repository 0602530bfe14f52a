"""``make run``'s first step: an operator key and a demo enterprise's root key, printed."""

from __future__ import annotations

from sqlmodel import select

from koomsg.config import Settings
from koomsg.core.db import Database
from koomsg.core.iam.keys import issue_key
from koomsg.core.principal import PrincipalKind
from koomsg.core.tenancy import service as tenancy
from koomsg.core.tenancy.models import Enterprise, IndustryClass

DEMO_ENTERPRISE = "Demo Enterprise"


async def print_demo_keys(settings: Settings, *, host: str, port: int) -> None:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            enterprise = (
                await session.exec(select(Enterprise).where(Enterprise.name == DEMO_ENTERPRISE))
            ).first()
            if enterprise is None:
                enterprise = await tenancy.create_enterprise(
                    session,
                    name=DEMO_ENTERPRISE,
                    real_name_verified=True,
                    industry_class=IndustryClass.NON_SENSITIVE,
                )
            _, operator_secret = await issue_key(
                session, kind=PrincipalKind.OPERATOR, name="demo-operator"
            )
            _, root_secret = await issue_key(
                session,
                kind=PrincipalKind.ENTERPRISE_ROOT,
                name=enterprise.name,
                enterprise_id=enterprise.id,
            )
    finally:
        await db.dispose()
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        "\n".join(
            [
                "",
                "koomsg is starting with the embedded default (SQLite, in-process broker, outbox folder).",
                f"  GraphiQL:            http://{shown_host}:{port}/graphql",
                f"  data dir:            {settings.data_dir}",
                f"  operator key:        {operator_secret}",
                f"  '{DEMO_ENTERPRISE}' root key: {root_secret}",
                '  In GraphiQL, open Headers and paste {"Authorization": "Bearer <key>"}.',
                "",
            ]
        ),
        flush=True,
    )
