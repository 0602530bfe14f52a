"""The one place HTTP requests meet the rate limits (the rule is core/ratelimits/admission.py).

``/graphql`` (the API and the GraphiQL page) and the public link paths
(open pixel, click, unsubscribe, downloads, GraphiQL's assets) pass
``admit`` before the app sees them. Over a limit the whole request is
refused with HTTP 429, a ``Retry-After`` header and a GraphQL-shaped body
(``RATE_LIMITED`` with ``extensions.retryAfter``), and nothing is executed.
Probes (``/healthz``, ``/readyz``) and ``/metrics`` are never limited.

A valid key's principal is handed on in the ASGI scope, so the request
does not authenticate twice.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from koomsg.core.principal import Principal
from koomsg.core.ratelimits.admission import admit
from koomsg.core.ratelimits.bucket import RateLimited
from koomsg.runtime import Runtime
from koomsg.schema.context import bearer_from_headers

log = logging.getLogger("koomsg.web.ratelimit")
PRINCIPAL_SCOPE_KEY = "koomsg.principal"
_PUBLIC_PREFIXES = ("/t/", "/u/", "/files/", "/graphiql/")


def admitted_principal(scope: Scope) -> Principal | None:
    """The principal the gate authenticated for this request, if any."""
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else None


def client_address(scope: Scope) -> str:
    # uvicorn puts the X-Forwarded-For address here for trusted proxies (FORWARDED_ALLOW_IPS).
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitGate:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        is_api = path == "/graphql"
        if scope["type"] != "http" or not (is_api or path.startswith(_PUBLIC_PREFIXES)):
            await self.app(scope, receive, send)
            return
        bearer = bearer_from_headers(Headers(scope=scope)) if is_api else None
        try:
            principal = await admit(
                self.runtime.db,
                self.runtime.rate_limiter,
                bearer=bearer,
                address=client_address(scope),
            )
        except RateLimited as exc:
            await too_many_requests(exc)(scope, receive, send)
            return
        except Exception:
            # A limiter whose store is down must not take the API down with it: let the request
            # through (the API still authenticates it) and say so in the log.
            log.warning("rate limit not applied: the bucket store failed", exc_info=True)
            principal = None
        if principal is not None:
            self.runtime.key_usage.touch(principal.key_id)
        await self.app({**scope, PRINCIPAL_SCOPE_KEY: principal}, receive, send)


def too_many_requests(exc: RateLimited) -> JSONResponse:
    error = {
        "message": exc.message,
        "extensions": {"code": exc.code, "retryAfter": exc.retry_after},
    }
    return JSONResponse(
        {"data": None, "errors": [error]},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )
