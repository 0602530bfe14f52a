"""Secrets derived from ``KOOMSG_SECRET_KEY``: encryption at rest and signed tokens.

One master secret, a separate derived key per purpose (HKDF), so a token of
one kind can never be replayed as another. The master secret may be a list,
newest first, so it can be rotated without breaking anything: data is
encrypted and tokens are signed with the newest key, and every key in the
list still decrypts and verifies (``koomsg secrets rotate`` re-encrypts stored
data under the newest key; tokens signed with an older one stay valid until
that key is removed from the list).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# One key, or several newest first (Settings.secret_keys).
SecretKeys = str | Sequence[str]


class BadToken(Exception):
    """A token that was forged, altered, expired or made for another purpose."""


def _all(keys: SecretKeys) -> tuple[str, ...]:
    found = (keys,) if isinstance(keys, str) else tuple(keys)
    if not found:
        raise ValueError("no secret key given")
    return found


@lru_cache(maxsize=64)
def derive_key(secret_key: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"koomsg", info=purpose.encode()).derive(
        secret_key.encode()
    )


@lru_cache(maxsize=16)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(derive_key(key, "encryption-at-rest"))) for key in keys]
    )


def encrypt(keys: SecretKeys, plaintext: bytes) -> str:
    """Fernet-encrypt under the newest key."""
    return _fernet(_all(keys)).encrypt(plaintext).decode()


def decrypt(keys: SecretKeys, token: str) -> bytes:
    """Decrypt with whichever of the keys encrypted it."""
    try:
        return _fernet(_all(keys)).decrypt(token.encode())
    except InvalidToken:
        raise BadToken("cannot decrypt: wrong KOOMSG_SECRET_KEY or altered data") from None


def reencrypt(keys: SecretKeys, token: str) -> str:
    """The same plaintext encrypted under the newest key (for ``koomsg secrets rotate``)."""
    try:
        return _fernet(_all(keys)).rotate(token.encode()).decode()
    except InvalidToken:
        raise BadToken("cannot decrypt: none of the KOOMSG_SECRET_KEY keys fits") from None


def is_encrypted_with_newest(keys: SecretKeys, token: str) -> bool:
    newest = _all(keys)[:1]
    try:
        _fernet(newest).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, purpose: str, encoded: str) -> bytes:
    return hmac.new(
        derive_key(secret_key, f"token:{purpose}"), encoded.encode(), hashlib.sha256
    ).digest()[:20]


def sign_token(
    keys: SecretKeys,
    purpose: str,
    payload: dict[str, Any],
    *,
    ttl_seconds: int | None = None,
    issued_at: bool = False,
) -> str:
    """A compact URL-safe token: payload and an HMAC-SHA256 over it, bound to ``purpose``,
    made with the newest key. ``ttl_seconds`` adds an expiry (``exp``), ``issued_at`` the
    issue time (``iat``) for callers whose lifetime is decided when the token is read."""
    body = dict(payload)
    now = int(time.time())
    if ttl_seconds is not None:
        body["exp"] = now + ttl_seconds
    if issued_at:
        body["iat"] = now
    encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{encoded}.{_b64(_mac(_all(keys)[0], purpose, encoded))}"


def verify_token(keys: SecretKeys, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token any of the keys signed for ``purpose``; BadToken otherwise."""
    encoded, _, mac_text = token.partition(".")
    try:
        given = _unb64(mac_text)
        body = json.loads(_unb64(encoded))
    except (ValueError, UnicodeDecodeError):
        raise BadToken("malformed token") from None
    signed = any(hmac.compare_digest(given, _mac(key, purpose, encoded)) for key in _all(keys))
    if not signed or not isinstance(body, dict):
        raise BadToken("token signature does not match")
    if "exp" in body and int(body["exp"]) < time.time():
        raise BadToken("token expired")
    return body


def token_digest(token: str) -> str:
    """A short, stable stand-in for a token in logs: enough to correlate, useless to replay."""
    return "tok:" + hashlib.sha256(token.encode()).hexdigest()[:12]
