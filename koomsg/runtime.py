"""What one process holds while it runs: settings, database, plugins, broker.

Built once at start-up by ``koomsg serve`` or ``koomsg worker`` (or by a
test) and handed down explicitly; nothing here is a hidden global except the
worker-side copy that dramatiq actors find through ``worker_runtime()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pluggy

from koomsg.config import Settings, check_transport
from koomsg.core.db import Database
from koomsg.core.iam.usage import KeyUsage
from koomsg.plugins.manager import call_all, make_manager
from koomsg.plugins.types import PublicTemplate, Transport


@dataclass
class Runtime:
    settings: Settings
    db: Database
    plugins: pluggy.PluginManager
    broker: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    _transport: Transport | None = None
    key_usage: KeyUsage = field(init=False)

    def __post_init__(self) -> None:
        self.key_usage = KeyUsage(self.db)

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
        if self._transport is not None:
            await self._transport.close()
        await self.db.dispose()
