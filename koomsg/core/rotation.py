"""Re-encrypting data at rest under the newest ``KOOMSG_SECRET_KEY`` (``koomsg secrets rotate``).

Rotation is two steps an operator takes: put the new key first in the list
(older keys after it, so everything stored and signed before still works),
then re-encrypt what is stored. Once nothing is encrypted under an old key
and the tokens it signed no longer need to work, the old key can go.
Today the stored secrets are the DKIM private keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from koomsg.core.crypto import SecretKeys, is_encrypted_with_newest, reencrypt
from koomsg.core.db import Database
from koomsg.core.domains.models import DkimKey

CHUNK = 200


@dataclass(frozen=True)
class Rotation:
    reencrypted: int
    already_newest: int


async def reencrypt_stored_secrets(db: Database, keys: SecretKeys) -> Rotation:
    """Re-encrypt every DKIM private key under the newest key, a chunk per transaction.

    Safe to interrupt and run again: rows already under the newest key are skipped.
    Raises ``BadToken`` if a row fits none of the keys (an old key was dropped too early).
    """
    reencrypted = already = 0
    after = ""
    while True:
        async with db.transaction() as session:
            query = (
                select(DkimKey)
                .where(col(DkimKey.id) > after)
                .order_by(col(DkimKey.id))
                .limit(CHUNK)
            )
            rows = list((await session.exec(query)).all())
            for row in rows:
                if is_encrypted_with_newest(keys, row.private_key_encrypted):
                    already += 1
                    continue
                row.private_key_encrypted = reencrypt(keys, row.private_key_encrypted)
                session.add(row)
                reencrypted += 1
        if len(rows) < CHUNK:
            return Rotation(reencrypted, already)
        after = rows[-1].id
