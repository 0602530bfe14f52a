"""``make run``'s first step: an operator key and a demo enterprise's root key, printed.

The keys are kept in the data directory (``demo_keys``, mode 0600, replaced
atomically) and reused at the next ``koomsg serve --demo``, so restarts do
not pile up permanent keys. A stored key that no longer authenticates (the
database was wiped, the key revoked) is replaced by a new one.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.config import Settings, write_key_file
from koomsg.core.db import Database
from koomsg.core.errors import Unauthenticated
from koomsg.core.iam.keys import authenticate, issue_key
from koomsg.core.principal import PrincipalKind
from koomsg.core.tenancy import service as tenancy
from koomsg.core.tenancy.models import Enterprise, IndustryClass

DEMO_ENTERPRISE = "Demo Enterprise"
DEMO_KEYS_FILE = "demo_keys"


def _stored(path: Path) -> dict[str, str]:
    """``operator=<secret>`` and ``root=<secret>`` lines; nothing when the file is missing."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.partition("=") for line in lines)
    return {label.strip(): secret.strip() for label, _, secret in pairs if secret.strip()}


async def _still_valid(
    session: AsyncSession, secret: str | None, kind: PrincipalKind, enterprise_id: str | None
) -> bool:
    if not secret:
        return False
    try:
        principal = await authenticate(session, secret)
    except Unauthenticated:
        return False
    return principal.kind is kind and principal.enterprise_id == enterprise_id


async def _demo_keys(session: AsyncSession, stored: dict[str, str]) -> dict[str, str]:
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
    found = dict(stored)
    if not await _still_valid(session, stored.get("operator"), PrincipalKind.OPERATOR, None):
        _, found["operator"] = await issue_key(
            session, kind=PrincipalKind.OPERATOR, name="demo-operator"
        )
    root = PrincipalKind.ENTERPRISE_ROOT
    if not await _still_valid(session, stored.get("root"), root, enterprise.id):
        _, found["root"] = await issue_key(
            session, kind=root, name=enterprise.name, enterprise_id=enterprise.id
        )
    return found


async def print_demo_keys(settings: Settings, *, host: str, port: int) -> None:
    path = settings.data_dir / DEMO_KEYS_FILE
    stored = _stored(path)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            found = await _demo_keys(session, stored)
    finally:
        await db.dispose()
    if found != stored:
        write_key_file(path, [f"operator={found['operator']}", f"root={found['root']}"])
    reused = "reused from" if found == stored else "kept in"
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        "\n".join(
            [
                "",
                "koomsg is starting with the embedded default (SQLite, in-process broker, outbox folder).",
                f"  GraphiQL:            http://{shown_host}:{port}/graphql",
                f"  data dir:            {settings.data_dir}",
                f"  demo keys:           {reused} {path} (mode 0600)",
                f"  operator key:        {found['operator']}",
                f"  '{DEMO_ENTERPRISE}' root key: {found['root']}",
                '  In GraphiQL, open Headers and paste {"Authorization": "Bearer <key>"}.',
                "",
            ]
        ),
        flush=True,
    )
