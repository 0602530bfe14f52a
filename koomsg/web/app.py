"""The HTTP application: GraphQL, GraphiQL with local assets, health and metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from koomsg.metrics import HTTP_LATENCY, HTTP_REQUESTS
from koomsg.runtime import Runtime
from koomsg.schema.context import Context, bearer_from_headers
from koomsg.schema.root import build_schema
from koomsg.web.downloads import recipient_sample
from koomsg.web.logs import install_token_redaction
from koomsg.web.ratelimit import RateLimitGate, admitted_principal
from koomsg.web.tracking import tracking_routes

log = logging.getLogger("koomsg.web.app")
WEB_DIR = Path(__file__).parent
# The only files the GraphiQL page loads; each comes from this server.
GRAPHIQL_ASSETS = {
    "react.production.min.js": "node_modules/react/umd/react.production.min.js",
    "react-dom.production.min.js": "node_modules/react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "node_modules/graphiql/graphiql.min.js",
    "graphiql.min.css": "node_modules/graphiql/graphiql.min.css",
    "koomsg-graphiql.js": "koomsg-graphiql.js",
}


class KoomsgGraphQL(GraphQL):  # type: ignore[type-arg]
    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(build_schema(runtime.settings), multipart_uploads_enabled=True, **kwargs)
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            # A body that is not GraphQL at all: a JSON error clients can parse.
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": "BAD_REQUEST"}}]},
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """JSON bodies are bounded before and while parsing: size first, then depth (the
        parser stops at Python's recursion limit, which used to be a 500)."""
        if len(data) > MAX_JSON_BYTES:
            raise HTTPException(413, f"a JSON body is at most {MAX_JSON_BYTES >> 20} MiB")
        try:
            decoded = json.loads(data)
        except RecursionError:
            raise HTTPException(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "the body is not JSON (UTF-8)") from None
        if json_depth(decoded) > MAX_JSON_DEPTH:
            raise HTTPException(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if not isinstance(decoded, dict):
            # Strawberry reads fields of it (a null or a list body used to be a 500);
            # multipart's operations and map are objects too.
            raise HTTPException(
                400, 'a GraphQL request is a JSON object, e.g. {"query": "{ me { name } }"}'
            )
        return decoded

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse((WEB_DIR / "graphiql.html").read_text())

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:  # type: ignore[override]
        return Context(
            self.runtime,
            bearer=bearer_from_headers(request.headers),
            request=request,
            principal=admitted_principal(request.scope),
        )


# Above the largest template body (2 MB of HTML, escaped in JSON); uploads are multipart.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 32


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in ``value``, without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


class BodyLimit:
    """Refuse request bodies above the limit before they are read into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "errors": [
                    {
                        "message": f"request body larger than {self.max_bytes} bytes",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            },
            status_code=413,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class Metrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = _route_label(scope["path"])
            HTTP_REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_label(path: str) -> str:
    # Token-carrying paths would explode the label set.
    for prefix in ("/t/o/", "/t/c/", "/u/", "/files/", "/graphiql/assets/"):
        if path.startswith(prefix):
            return prefix + "*"
    return path if path in {"/graphql", "/healthz", "/readyz", "/metrics", "/"} else "other"


def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    relative = GRAPHIQL_ASSETS.get(name)
    path = WEB_DIR / relative if relative else None
    if path is None or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


def create_app(
    runtime: Runtime,
    *,
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
    extra_routes: Sequence[Any] = (),
) -> ASGIApp:
    graphql = KoomsgGraphQL(runtime)
    install_token_redaction()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        # Only "ok" or "unreachable" leaves the process: the reason is in the server log.
        checks: dict[str, str] = {}
        try:
            await runtime.db.ping()
            checks["database"] = "ok"
        except Exception:
            log.warning("readiness: the database is unreachable", exc_info=True)
            checks["database"] = "unreachable"
        broker = await runtime.broker_ping()
        if broker != "ok":
            log.warning("readiness: the broker is %s", broker)
        checks["broker"] = "ok" if broker == "ok" else "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", **checks},
            status_code=200 if ready else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def index(_: Request) -> Response:
        return JSONResponse({"service": "koomsg", "graphql": "/graphql", "graphiql": "/graphql"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        install_token_redaction()  # uvicorn has configured its loggers by now
        for start in on_startup:
            result = start()
            if hasattr(result, "__await__"):
                await result
        try:
            yield
        finally:
            for stop in on_shutdown:
                result = stop()
                if hasattr(result, "__await__"):
                    await result

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/graphiql/assets/{name}", _asset),
            Route("/files/recipient-sample/{token}", recipient_sample),
            *tracking_routes(runtime),
            *extra_routes,
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return Metrics(RateLimitGate(BodyLimit(app, runtime.settings.max_request_bytes), runtime))
