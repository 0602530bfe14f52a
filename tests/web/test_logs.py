"""Link tokens never reach the logs: a served request is logged with a digest instead."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx
import pytest

from koomsg.core.crypto import token_digest
from koomsg.testing.serve import Server
from koomsg.web.logs import RedactTokens, redact_tokens

PATHS = ("/t/o/{}", "/t/c/{}", "/u/{}", "/files/recipient-sample/{}")


def test_token_paths_are_redacted_and_other_paths_kept() -> None:
    token = "eyJtIjoibXNnXzEifQ.c2lnbmF0dXJl"
    for template in PATHS:
        line = f'127.0.0.1:5000 - "GET {template.format(token)}?x=1 HTTP/1.1" 302'
        redacted = redact_tokens(line)
        assert token not in redacted and token_digest(token) in redacted
    assert redact_tokens("/graphql?query=1") == "/graphql?query=1"


def test_the_filter_rewrites_uvicorn_style_records() -> None:
    token = secrets.token_urlsafe(24)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/u/{token}", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert token not in record.getMessage()


@pytest.mark.slow
def test_a_served_token_is_not_in_the_server_log(tmp_path: Path) -> None:
    server = Server(tmp_path / "var")
    tokens = [secrets.token_urlsafe(30) for _ in PATHS]
    try:
        for template, token in zip(PATHS, tokens, strict=True):
            httpx.get(server.url + template.format(token), timeout=10)
            httpx.post(server.url + template.format(token), timeout=10)
    finally:
        server.terminate()
    log = server.output()
    assert "GET /t/o/tok:" in log, log[-2000:]
    for token in tokens:
        assert token not in log
