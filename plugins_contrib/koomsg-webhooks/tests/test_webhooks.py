from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import koomsg_webhooks
import pytest

from koomsg.plugins.manager import make_manager
from koomsg.plugins.types import MessageEvent


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[tuple[bytes, str]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append((body, self.headers["X-Koomsg-Signature"]))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def event(number: int) -> MessageEvent:
    return MessageEvent(
        kind="status",
        enterprise_id="ent_1",
        message_id=f"msg_{number}",
        task_id="tsk_1",
        status="DELIVERED",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    found = Receiver(fail_first=1)
    monkeypatch.setenv("KOOMSG_WEBHOOK_URL", found.url)
    monkeypatch.setenv("KOOMSG_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setattr(koomsg_webhooks, "FLUSH_SECONDS", 0.05)
    yield found
    found.close()


def test_the_plugin_registers_through_the_koomsg_entry_point() -> None:
    manager = make_manager()
    assert manager.get_plugin("webhooks") is koomsg_webhooks


async def test_events_are_batched_signed_and_retried(receiver: Receiver) -> None:
    for number in range(150):
        await koomsg_webhooks.koomsg_message_event(event(number))
    await koomsg_webhooks.flush()
    sizes = [len(json.loads(body)["events"]) for body, _ in receiver.bodies]
    assert sizes == [100, 50]
    body, header = receiver.bodies[0]
    assert header == koomsg_webhooks.signature("s3cret", body)
    first = json.loads(body)["events"][0]
    assert first["messageId"] == "msg_0" and first["status"] == "DELIVERED"


async def test_nothing_happens_without_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOOMSG_WEBHOOK_URL", raising=False)
    await koomsg_webhooks.koomsg_message_event(event(1))
    await koomsg_webhooks.flush()
