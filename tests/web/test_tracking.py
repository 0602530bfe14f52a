"""Click and open links expire, and a click never redirects anywhere but http(s)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.crypto import sign_token
from koomsg.core.delivery.models import Message
from koomsg.core.tracking.links import CLICK, OPEN
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, make_task, statuses
from koomsg.testing.plugin import Api, EnterpriseHandle, SendableSetup, sendable_setup

DAY = 86400
DESTINATION = "https://example.com/offer?a=1&b=2"


@pytest.fixture
async def message(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> Message:
    setup: SendableSetup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, ["reader@example.net"])
    await drain(runtime)
    return (await statuses(runtime, task.id))["reader@example.net"]


def click(
    runtime: Runtime, message: Message, *, age_days: float | None, url: str = DESTINATION
) -> str:
    payload: dict[str, object] = {"m": message.id, "u": url}
    if age_days is not None:
        payload["iat"] = int(time.time() - age_days * DAY)
    return f"/t/c/{sign_token(runtime.settings.secret_keys, CLICK, payload)}"


async def clicks(runtime: Runtime, message: Message) -> int:
    async with runtime.db.session() as session:
        row = await session.get(Message, message.id)
        assert row is not None
        return row.click_count


async def test_a_fresh_click_redirects_and_an_expired_one_shows_the_address(
    runtime: Runtime, message: Message, http: httpx.AsyncClient
) -> None:
    assert runtime.settings.tracking_token_days == 90
    fresh = await http.get(click(runtime, message, age_days=89))
    assert fresh.status_code == 302 and fresh.headers["location"] == DESTINATION
    assert await clicks(runtime, message) == 1

    expired = await http.get(click(runtime, message, age_days=91))
    assert expired.status_code == 200 and "location" not in expired.headers
    assert "expired" in expired.text and "https://example.com/offer?a=1&amp;b=2" in expired.text
    assert "<a " not in expired.text  # the address is text, not a link
    assert await clicks(runtime, message) == 1, "an expired click is not counted"


async def test_an_expired_open_is_not_counted(
    runtime: Runtime, message: Message, http: httpx.AsyncClient
) -> None:
    token = sign_token(
        runtime.settings.secret_keys, OPEN, {"m": message.id, "iat": int(time.time() - 91 * DAY)}
    )
    pixel = await http.get(f"/t/o/{token}")
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    async with runtime.db.session() as session:
        row = await session.get(Message, message.id)
        assert row is not None and row.open_count == 0


async def test_links_without_an_issue_time_expire_with_their_message(
    runtime: Runtime, message: Message, http: httpx.AsyncClient
) -> None:
    """Links sent before tokens carried an issue time count from the message's creation."""
    assert (await http.get(click(runtime, message, age_days=None))).status_code == 302
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message.id)  # type: ignore[arg-type]
            .values(created_at=utcnow() - timedelta(days=91))
        )
    assert (await http.get(click(runtime, message, age_days=None))).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>x</script>",
        "ftp://example.com/f",
        "https:///nohost",
    ],
)
async def test_a_click_never_redirects_to_another_scheme(
    runtime: Runtime, message: Message, http: httpx.AsyncClient, url: str
) -> None:
    answer = await http.get(click(runtime, message, age_days=0, url=url))
    assert answer.status_code == 404 and "location" not in answer.headers


class TestShortLifetime:
    @pytest.fixture
    def koomsg_env(self) -> dict[str, str]:
        return {"KOOMSG_TRACKING_TOKEN_DAYS": "1"}

    async def test_the_lifetime_is_configurable(
        self, runtime: Runtime, message: Message, http: httpx.AsyncClient
    ) -> None:
        assert (await http.get(click(runtime, message, age_days=0.5))).status_code == 302
        assert (await http.get(click(runtime, message, age_days=2))).status_code == 200
