"""The HTTP surface around GraphQL: GraphiQL, health, readiness, metrics."""

from __future__ import annotations

import functools
import re
from urllib.parse import urljoin, urlsplit

import httpx


async def test_graphiql_is_served_with_local_assets_only(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "<html" in page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(references) >= 4
    for reference in references:
        url = urljoin(str(page.url), reference)
        assert urlsplit(url).netloc == "testserver", f"{reference} points off-host"
        asset = await http.get(url)
        assert asset.status_code == 200, reference
        assert len(asset.content) > 100
        # No asset may pull anything else from another host at run time.
        for found in re.findall(
            rb"""(?:@import\s+url\(|src=|href=)["']?(https?://[^"')\s]+)""", asset.content
        ):
            raise AssertionError(f"{reference} loads {found!r}")


async def test_unknown_asset_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/graphiql/assets/../../koomsg.db")).status_code == 404
    assert (await http.get("/graphiql/assets/secret_key")).status_code == 404


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok" and ready.json()["broker"] == "ok"


async def test_metrics_are_prometheus_text(http: httpx.AsyncClient) -> None:
    await http.get("/healthz")
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert "koomsg_http_requests_total" in metrics.text
    assert 'route="/healthz"' in metrics.text


async def test_readiness_fails_when_the_broker_is_down(koomsg_database_url: str, tmp_path) -> None:
    from koomsg.runtime import Runtime
    from koomsg.testing.plugin import make_test_settings
    from koomsg.web.app import create_app
    from koomsg.worker.broker import broker_ping, make_broker

    # Nothing listens on port 1: the broker is unreachable.
    settings = make_test_settings(
        koomsg_database_url, tmp_path, KOOMSG_BROKER_URL="redis://127.0.0.1:1/0"
    )
    broker = make_broker(settings)
    runtime = Runtime.build(settings, broker=broker)
    # The seam ProcessServices.attach sets, without making this broker the global one.
    runtime.broker_ping = functools.partial(broker_ping, broker)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        # Ready or not, and which part: no exception names or messages reach the client.
        assert ready.json() == {"status": "not ready", "database": "ok", "broker": "unreachable"}
    finally:
        await runtime.close()


async def test_a_deeply_nested_json_body_is_a_400_json_error(http: httpx.AsyncClient) -> None:
    for depth in (100, 100_000):
        body = '{"query": "{ me { kind } }", "variables": {"a": ' + "[" * depth + "]" * depth + "}}"
        answer = await http.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert "nested deeper" in answer.json()["errors"][0]["message"]


async def test_a_json_body_over_its_limit_is_refused(http: httpx.AsyncClient) -> None:
    body = '{"query": "{ me { kind } }", "variables": {"a": "' + "x" * (9 << 20) + '"}}'
    answer = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["errors"]
