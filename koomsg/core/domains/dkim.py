"""DKIM keys and signing (RFC 6376, rsa-sha256, relaxed/relaxed).

dkimpy's RSA step is pure Python (about 170 signatures/s); delivery signs
thousands of messages per second, so parsing and canonicalisation come from
dkimpy and the RSA step from ``cryptography``. A ``Signer`` holds one loaded
key: build it once per domain, not per message.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import rfc822_parse, select_headers

KEY_BITS = 2048
DEFAULT_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "cc",
    "mime-version", "content-type", "content-transfer-encoding", "list-unsubscribe",
    "list-unsubscribe-post",
)  # fmt: skip


def generate_key() -> tuple[bytes, str]:
    """A new key pair: (private key PEM, public key as the base64 ``p=`` value)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode("ascii")


def new_selector() -> str:
    # Random rather than dated, so two rotations on one day still differ.
    return f"km{secrets.token_hex(4)}"


def txt_value(public_key_b64: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_b64}"


_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")
_WSP_TO_SPACE = re.compile(rb"[\t ]{2,}|\t")


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4, as dkimpy computes it, but touching only the whitespace that changes
    (dkimpy rewrites every single space, which dominates signing time on large bodies)."""
    # The substring tests are much cheaper than the regexes and usually false for the
    # encoded bodies delivery produces.
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    if b"  " in body or b"\t" in body:
        body = _WSP_TO_SPACE.sub(b" ", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == len(body):
        body += b"\r\n"
    else:
        body = body[: end + 2]
    return b"" if body == b"\r\n" else body


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_HEADER_WSP = re.compile(rb"[\t ]+")


def relaxed_headers(headers: Sequence[Sequence[bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 6376 3.4.2, as dkimpy's ``Relaxed.canonicalize_headers`` computes it, with one
    regular expression per field instead of two."""
    return [
        (
            name.lower().rstrip(),
            _HEADER_WSP.sub(b" ", value.replace(b"\r\n", b"")).strip() + b"\r\n",
        )
        for name, value in headers
    ]


_LINE_END = re.compile(rb"\r?\n")


_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+):")


def _split_crlf(message: bytes) -> tuple[list[list[bytes]], bytes] | None:
    """The fast path for what koomsg builds itself: CRLF only, no bare LF, a blank line.

    Delivery signs every message, and dkimpy's line-by-line regular expressions cost
    about a third of the signing time; None sends anything unusual to that parser."""
    end = message.find(b"\r\n\r\n")
    if end == -1 or message.count(b"\n") != message.count(b"\r\n"):
        return None
    headers: list[list[bytes]] = []
    for line in message[:end].split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1][1] += line + b"\r\n"
            continue
        found = _FIELD_NAME.match(line)
        if found is None:
            return None
        headers.append([found.group(1), line[found.end() :] + b"\r\n"])
    return headers, message[end + 4 :]


def _split(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """Header fields and the CRLF body; dkimpy's parser walks every body line, which is
    most of the cost for large messages, so it only sees the header block here."""
    fast = _split_crlf(message)
    if fast is not None:
        return fast
    boundary = _BLANK_LINE.search(message)
    if boundary is None:
        return rfc822_parse(message)[0], b""
    headers = rfc822_parse(message[: boundary.start()] + b"\r\n")[0]
    return headers, _LINE_END.sub(b"\r\n", message[boundary.end() :])


def _fold_b64(value: bytes, first: int = 60, width: int = 72) -> bytes:
    parts = [value[:first]] + [value[i : i + width] for i in range(first, len(value), width)]
    return b"\r\n ".join(part for part in parts if part)


class Signer:
    """Signs messages for one domain and selector with one private key."""

    def __init__(self, *, domain: str, selector: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a DKIM key for rsa-sha256 must be an RSA key")
        self._key = key
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")

    def sign(
        self,
        message: bytes,
        *,
        include_headers: Sequence[str] = DEFAULT_HEADERS,
        timestamp: int | None = None,
    ) -> bytes:
        """The ``DKIM-Signature: ...\\r\\n`` header field to prepend to ``message``."""
        headers, body = _split(message)
        present = {name.lower() for name, _ in headers}
        wanted = [h.lower().encode("ascii") for h in include_headers]
        if b"from" not in wanted:
            raise ValueError("the From header field must be signed (RFC 6376 5.4)")
        # Listing an absent field once still protects against it being added later.
        signed = [h for h in wanted if h in present or h == b"from"]
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        tags = [
            b"v=1",
            b"a=rsa-sha256",
            b"c=relaxed/relaxed",
            b"d=" + self.domain,
            b"s=" + self.selector,
            b"t=" + str(int(time.time()) if timestamp is None else timestamp).encode(),
            b"h=" + b":".join(signed),
            b"bh=" + body_hash,
            b"b=",
        ]
        value = b" " + b";\r\n\t".join(b"; ".join(tags[i : i + 4]) for i in range(0, len(tags), 4))
        hasher = hashes.Hash(hashes.SHA256())
        canonical = relaxed_headers([*select_headers(headers, signed), [b"DKIM-Signature", value]])
        for index, (name, field_value) in enumerate(canonical):
            hasher.update(name + b":")
            # The signature field itself is hashed without its trailing CRLF.
            hasher.update(
                field_value.rstrip(b"\r\n") if index == len(canonical) - 1 else field_value
            )
        digest = hasher.finalize()
        signature = self._key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        return b"DKIM-Signature:" + value + _fold_b64(base64.b64encode(signature)) + b"\r\n"


@lru_cache(maxsize=256)
def _signer(domain: str, selector: str, private_key_pem: bytes) -> Signer:
    return Signer(domain=domain, selector=selector, private_key_pem=private_key_pem)


def sign(
    message: bytes,
    *,
    domain: str,
    selector: str,
    private_key_pem: bytes,
    include_headers: Sequence[str] = DEFAULT_HEADERS,
) -> bytes:
    """Sign with a cached ``Signer``: loading an RSA key costs more than signing with it."""
    return _signer(domain, selector, private_key_pem).sign(message, include_headers=include_headers)
