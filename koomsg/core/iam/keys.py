"""Access keys: secrets shown once, stored hashed, compared in constant time.

A secret reads ``<key id>.<random part>``: the id finds the row, the random
part is checked against its SHA-256 with ``hmac.compare_digest``. The row is
read on every request, never cached, so a revocation (``revoked_at``) holds
from the very next request in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import Unauthenticated
from koomsg.core.iam.models import AccessKey
from koomsg.core.principal import Principal, PrincipalKind


def _digest(random_part: str) -> str:
    return hashlib.sha256(random_part.encode()).hexdigest()


async def issue_key(
    session: AsyncSession,
    *,
    kind: PrincipalKind,
    name: str,
    enterprise_id: str | None = None,
    user_id: str | None = None,
) -> tuple[AccessKey, str]:
    """Create a key; the returned secret is never stored and cannot be shown again."""
    random_part = secrets.token_urlsafe(32)
    key = AccessKey(
        kind=kind,
        name=name,
        enterprise_id=enterprise_id,
        user_id=user_id,
        secret_hash=_digest(random_part),
    )
    session.add(key)
    await session.flush()
    return key, f"{key.id}.{random_part}"


async def authenticate(session: AsyncSession, secret: str | None) -> Principal:
    if not secret:
        raise Unauthenticated("missing access key: send 'Authorization: Bearer <secret>'")
    key_id, _, random_part = secret.partition(".")
    key = await session.get(AccessKey, key_id) if key_id and random_part else None
    # Compare even when the key is unknown, so timing does not tell ids apart.
    expected = key.secret_hash if key is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(random_part)) or key is None:
        raise Unauthenticated("invalid access key")
    # Only the holder of the secret learns that its key was revoked.
    if key.revoked_at is not None:
        raise Unauthenticated(
            f"access key {key.id} was revoked at {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    if key.kind == PrincipalKind.IAM_USER and key.user_id is None:  # its user was deleted
        raise Unauthenticated("invalid access key")
    return Principal(
        kind=PrincipalKind(key.kind),
        name=key.name,
        key_id=key.id,
        enterprise_id=key.enterprise_id,
        user_id=key.user_id,
    )
