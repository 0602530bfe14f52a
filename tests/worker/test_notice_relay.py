"""The Redis relay carries change notices between processes (needs the local Redis)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import redis

from koomsg.core.notices import NoticeHub
from koomsg.worker.notices import RedisRelay

URL = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith("redis"), reason="KOOMSG_TEST_BROKER_URL is not a Redis URL"
)


async def test_notices_cross_between_two_relays() -> None:
    """Two hubs stand for two processes: the API's and a worker's."""
    channel = f"koomsg:test-notices:{os.getpid()}"
    api, worker = NoticeHub(), NoticeHub()
    relays = [
        RedisRelay(URL, hub=api, channel=channel),
        RedisRelay(URL, hub=worker, channel=channel),
    ]
    for relay in relays:
        relay.start()
    probe = redis.Redis.from_url(URL)
    try:
        # Both listening before anything is sent: pub/sub keeps nothing for latecomers.
        while probe.pubsub_numsub(channel)[0][1] < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        with api.listen("tsk_x") as follower:
            woke = asyncio.create_task(follower.wait())
            worker.publish(["tsk_x"])
            await woke  # the test's own timeout is the only limit: no timed assertion
            # A process's own notices come back on the channel and are not delivered twice.
            with worker.listen("tsk_x") as own:
                probe.publish(
                    channel, json.dumps({"origin": relays[1].origin, "topics": ["tsk_x"]})
                )
                probe.publish(channel, json.dumps({"origin": "else", "topics": ["tsk_y"]}))
                with api.listen("tsk_y") as marker:
                    probe.publish(channel, json.dumps({"origin": "else", "topics": ["tsk_y"]}))
                    await marker.wait()
                assert not own.woken
    finally:
        probe.close()
        for relay in relays:
            await asyncio.to_thread(relay.stop)
