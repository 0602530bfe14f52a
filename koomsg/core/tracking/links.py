"""Tracking and unsubscribe links: signed tokens, so none can be forged or enumerated.

Every link carries the message id (and, for clicks, the destination) under an
HMAC made with ``KOOMSG_SECRET_KEY``: a click can only redirect to a URL that
koomsg itself put into that message, so the endpoint is no open redirect.
Open and click tokens also carry their issue time and stop redirecting after
``KOOMSG_TRACKING_TOKEN_DAYS`` (see ``is_expired``), so a link in an old
message cannot serve as a permanent redirector on the platform's domain.
Unsubscribe links never expire: a recipient must always be able to leave.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from koomsg.config import Settings
from koomsg.core.crypto import sign_token, verify_token

OPEN, CLICK, UNSUBSCRIBE = "open", "click", "unsubscribe"
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def link_base(settings: Settings, sender_domain: str) -> str:
    """``KOOMSG_PUBLIC_URL``, or ``tracking.<sender domain>`` (its CNAME points at us)."""
    if settings.tracking_links == "domain":
        scheme = urlsplit(settings.public_url).scheme or "https"
        return f"{scheme}://tracking.{sender_domain}"
    return settings.public_url


def unsubscribe_url(settings: Settings, base: str, message_id: str) -> str:
    return f"{base}/u/{sign_token(settings.secret_keys, UNSUBSCRIBE, {'m': message_id})}"


def open_url(settings: Settings, base: str, message_id: str) -> str:
    token = sign_token(settings.secret_keys, OPEN, {"m": message_id}, issued_at=True)
    return f"{base}/t/o/{token}"


def click_url(settings: Settings, base: str, message_id: str, destination: str) -> str:
    payload = {"m": message_id, "u": destination}
    return f"{base}/t/c/{sign_token(settings.secret_keys, CLICK, payload, issued_at=True)}"


def is_web_url(url: str) -> bool:
    """Only http(s) URLs with a host are ever redirected to (never javascript:, data:, …)."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_expired(
    settings: Settings, payload: dict[str, str], *, sent_at: datetime | None, now: datetime
) -> bool:
    """Whether an open or click token is past ``KOOMSG_TRACKING_TOKEN_DAYS``. Tokens made
    before they carried an issue time count from the message's creation instead."""
    lifetime = timedelta(days=settings.tracking_token_days)
    if "iat" in payload:
        try:
            return now.timestamp() - int(payload["iat"]) > lifetime.total_seconds()
        except ValueError:
            return True
    return sent_at is None or now - sent_at > lifetime


def instrument_html(settings: Settings, base: str, message_id: str, html: str) -> str:
    """Route the message's web links through the click endpoint and add the open pixel."""
    own_prefix = f"{base}/u/"

    def rewrite(match: re.Match[str]) -> str:
        destination = match.group(2).replace("&amp;", "&")
        if destination.startswith(own_prefix):
            return match.group(0)
        return match.group(1) + click_url(settings, base, message_id, destination) + match.group(3)

    tracked = _HREF.sub(rewrite, html)
    pixel = f'<img src="{open_url(settings, base, message_id)}" width="1" height="1" alt="" style="display:block;border:0">'
    closing = tracked.lower().rfind("</body>")
    if closing == -1:
        return tracked + pixel
    return tracked[:closing] + pixel + tracked[closing:]


def read_token(settings: Settings, purpose: str, token: str) -> dict[str, str]:
    """The token's payload; raises ``BadToken`` for anything koomsg did not sign for ``purpose``."""
    payload = verify_token(settings.secret_keys, purpose, token)
    return {str(k): str(v) for k, v in payload.items()}
