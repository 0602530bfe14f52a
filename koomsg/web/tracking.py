"""Public endpoints in messages: open pixel, click redirect, unsubscribe page and one-click.

They answer on ``KOOMSG_PUBLIC_URL`` and on ``tracking.<domain>`` alike (the
CNAME points here; nothing depends on the Host header). A forged, altered or
unknown token is a 404 that says nothing more.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from koomsg.core.clock import utcnow
from koomsg.core.errors import NotFound
from koomsg.core.tracking import service
from koomsg.core.tracking.links import PIXEL_GIF, is_web_url
from koomsg.plugins.manager import emit_events
from koomsg.plugins.types import MessageEvent
from koomsg.runtime import Runtime

log = logging.getLogger(__name__)
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:Arial,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;cursor:pointer}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body), status_code=status, headers=NO_STORE
    )


def _not_found() -> Response:
    return PlainTextResponse("This link is not valid.", status_code=404, headers=NO_STORE)


def _event(kind: str, tracked: service.Tracked, **detail: Any) -> MessageEvent:
    message = tracked.message
    return MessageEvent(
        kind=kind,
        enterprise_id=message.enterprise_id,
        message_id=message.id,
        task_id=message.task_id,
        status=str(message.status),
        occurred_at=utcnow(),
        detail={"unique": tracked.first_time, **detail},
    )


def tracking_routes(runtime: Runtime) -> list[Route]:
    settings = runtime.settings

    async def tracked(
        action: Callable[..., Awaitable[service.Tracked]], token: str
    ) -> service.Tracked | None:
        try:
            async with runtime.db.transaction() as session:
                return await action(session, settings=settings, token=token, now=utcnow())
        except NotFound:
            return None

    async def open_pixel(request: Request) -> Response:
        result = await tracked(service.record_open, request.path_params["token"])
        if result is None:
            return _not_found()
        if not result.expired:
            emit_events(runtime.plugins, [_event("open", result)])
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)

    async def click(request: Request) -> Response:
        result = await tracked(service.record_click, request.path_params["token"])
        if result is None or not result.destination or not is_web_url(result.destination):
            return _not_found()
        if result.expired:
            # Old links do not redirect: the platform's domain is no lasting redirector.
            return _page(
                "This link has expired",
                "<p>It pointed to the address below. Copy it into your browser only if "
                f"you trust it:</p><p><code>{html.escape(result.destination)}</code></p>",
            )
        emit_events(runtime.plugins, [_event("click", result, url=result.destination)])
        return RedirectResponse(result.destination, status_code=302, headers=NO_STORE)

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            async with runtime.db.session() as session:
                message = await service.check_unsubscribe(session, settings=settings, token=token)
        except NotFound:
            return _not_found()
        if message.unsubscribed_at is not None:
            return _page(
                "You are unsubscribed",
                f"<p>{html.escape(message.recipient)} will get no more of these emails.</p>",
            )
        body = (
            f"<p>Stop emails from <strong>{html.escape(message.sender)}</strong> to "
            f"<strong>{html.escape(message.recipient)}</strong>?</p>"
            '<form method="post"><button type="submit">Unsubscribe</button></form>'
        )
        return _page("Unsubscribe", body)

    async def unsubscribe(request: Request) -> Response:
        # RFC 8058 one-click clients POST "List-Unsubscribe=One-Click"; the page's form posts nothing.
        result = await tracked(service.record_unsubscribe, request.path_params["token"])
        if result is None:
            return _not_found()
        emit_events(runtime.plugins, [_event("unsubscribe", result)])
        return _page(
            "You are unsubscribed",
            f"<p>{html.escape(result.message.recipient)} will get no more of these emails.</p>",
        )

    return [
        Route("/t/o/{token}", open_pixel, methods=["GET"]),
        Route("/t/c/{token}", click, methods=["GET"]),
        Route("/u/{token}", unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
    ]
