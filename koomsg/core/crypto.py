"""Secrets derived from ``KOOMSG_SECRET_KEY``: encryption at rest and signed tokens.

One master secret, a separate derived key per purpose (HKDF), so a token of
one kind can never be replayed as another and rotating the master rotates all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class BadToken(Exception):
    """A token that was forged, altered, expired or made for another purpose."""


@lru_cache(maxsize=64)
def derive_key(secret_key: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"koomsg", info=purpose.encode()).derive(
        secret_key.encode()
    )


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "encryption-at-rest")))


def encrypt(secret_key: str, plaintext: bytes) -> str:
    return _fernet(secret_key).encrypt(plaintext).decode()


def decrypt(secret_key: str, token: str) -> bytes:
    try:
        return _fernet(secret_key).decrypt(token.encode())
    except InvalidToken:
        raise BadToken("cannot decrypt: wrong KOOMSG_SECRET_KEY or altered data") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(
    secret_key: str, purpose: str, payload: dict[str, Any], *, ttl_seconds: int | None = None
) -> str:
    """A compact URL-safe token: payload and an HMAC-SHA256 over it, bound to ``purpose``."""
    body = dict(payload)
    if ttl_seconds is not None:
        body["exp"] = int(time.time()) + ttl_seconds
    encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(
        derive_key(secret_key, f"token:{purpose}"), encoded.encode(), hashlib.sha256
    ).digest()
    return f"{encoded}.{_b64(mac[:20])}"


def verify_token(secret_key: str, purpose: str, token: str) -> dict[str, Any]:
    encoded, _, mac_text = token.partition(".")
    try:
        given = _unb64(mac_text)
        body = json.loads(_unb64(encoded))
    except (ValueError, UnicodeDecodeError):
        raise BadToken("malformed token") from None
    expected = hmac.new(
        derive_key(secret_key, f"token:{purpose}"), encoded.encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(given, expected[:20]) or not isinstance(body, dict):
        raise BadToken("token signature does not match")
    if "exp" in body and int(body["exp"]) < time.time():
        raise BadToken("token expired")
    return body
