"""What one process holds while it runs: settings, database, plugins, broker.

Built once at start-up by ``koomsg serve`` or ``koomsg worker`` (or by a
test) and handed down explicitly; nothing here is a hidden global except the
worker-side copy that dramatiq actors find through ``worker_runtime()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from koomsg.config import Settings, check_transport
from koomsg.core.db import Database
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.iam.usage import KeyUsage
from koomsg.core.ratelimits.limiter import RateLimiter
from koomsg.core.recipients.parse_slots import HEADER_READS
from koomsg.plugins.manager import call_all, make_manager
from koomsg.plugins.types import PublicTemplate, Transport

# How the API asks a worker to import a task's recipient file (given the task id).
ImportEnqueuer = Callable[[str], None]
# How /readyz checks the broker: "ok", or why it is unreachable.
BrokerPing = Callable[[], Awaitable[str]]


async def no_broker_to_ping() -> str:
    return "ok"


@dataclass
class Runtime:
    settings: Settings
    db: Database
    plugins: pluggy.PluginManager
    broker: Any = None
    _transport: Transport | None = None
    # Seams to the workers, set by whoever composes the process (``ProcessServices.attach``
    # in ``koomsg serve`` and ``koomsg worker``, or a test). Unset, there is no worker
    # here: a recipient file waits for the import sweeper, and no broker is checked.
    enqueue_import: ImportEnqueuer | None = None
    broker_ping: BrokerPing = no_broker_to_ping
    # What the delivery core is handed; one per runtime so its content cache outlives a batch.
    delivery: DeliveryContext = field(init=False, repr=False)
    key_usage: KeyUsage = field(init=False)
    # The API's token buckets (KOOMSG_RATE_LIMIT_*); tests may swap its clock.
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.delivery = DeliveryContext(
            db=self.db,
            settings=self.settings,
            plugins=self.plugins,
            resolve_transport=lambda: self.transport,
        )
        self.key_usage = KeyUsage(self.db)
        self.rate_limiter = RateLimiter.from_settings(self.settings, self.db)
        HEADER_READS.configure(
            per_enterprise=self.settings.max_parses_per_enterprise,
            total=self.settings.max_parses,
        )

    @classmethod
    def build(
        cls, settings: Settings, *, plugins: pluggy.PluginManager | None = None, broker: Any = None
    ) -> Runtime:
        manager = plugins or make_manager(settings.plugins)
        runtime = cls(
            settings=settings, db=Database(settings.database_url), plugins=manager, broker=broker
        )
        check_transport(settings, set(runtime.transports()))
        return runtime

    def transports(self) -> dict[str, Transport]:
        found: dict[str, Transport] = {}
        for offered in self.plugins.hook.koomsg_transports(settings=self.settings):
            for transport in offered or ():
                found[transport.name] = transport
        return found

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = self.transports()[self.settings.transport]
        return self._transport

    async def public_templates(self) -> dict[str, PublicTemplate]:
        templates: dict[str, PublicTemplate] = {}
        # call_all yields the last registered first; apply in registration order so later wins.
        for offered in reversed(await call_all(self.plugins, "koomsg_public_templates")):
            for template in offered:
                templates[template.key] = template
        return templates

    async def close(self) -> None:
        await self.key_usage.drain()
        await self.rate_limiter.close()
        if self._transport is not None:
            await self._transport.close()
        await self.db.dispose()
