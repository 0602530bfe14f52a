"""The one dramatiq broker set-up.

``KOOMSG_BROKER_URL`` redis:// or amqp:// picks dramatiq's Redis or RabbitMQ
broker; unset, an in-process broker whose worker threads run inside
``koomsg serve``. Actors are async (dramatiq's AsyncIO middleware) so they can
await core services.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from koomsg.config import Settings

log = logging.getLogger(__name__)


def make_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.broker_url
    broker: dramatiq.Broker
    if url is None:
        broker = StubBroker()
        broker.emit_after("process_boot")
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    broker.add_middleware(AsyncIO())
    broker.koomsg_url = url  # type: ignore[union-attr]
    return broker


def install_broker(broker: dramatiq.Broker) -> None:
    """Make ``broker`` the one koomsg's actors are declared on (re-binding existing actors)."""
    dramatiq.set_broker(broker)
    from koomsg.worker import actors as worker

    for actor in worker.ACTORS:
        actor.broker = broker
        broker.declare_actor(actor)


async def broker_ping(broker: Any) -> str:
    if broker is None or isinstance(broker, StubBroker):
        return "ok"
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping_sync, broker), timeout=3)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def _ping_sync(broker: Any) -> None:
    url = broker.koomsg_url
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return
    import pika

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = 2
    pika.BlockingConnection(parameters).close()
