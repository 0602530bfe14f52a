"""``SmtpTransport``: one envelope in, one result out, over the relay or each domain's MX.

Recipients are grouped by destination (the relay, or each domain's mail
hosts, tried in order until one connects), each group delivered in one SMTP
transaction; ``send`` folds the per-recipient results into one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.asyncresolver

from koomsg.config import Settings
from koomsg.plugins.builtin.smtp.pool import ConnectFailed, Pools
from koomsg.plugins.builtin.smtp.routes import Relay, Route, direct_routes, make_resolver
from koomsg.plugins.types import DeliveryResult, DeliveryStatus, Envelope


class SmtpTransport:
    """Delivers envelopes over SMTP; see :mod:`koomsg.plugins.builtin.smtp` for modes and settings.

    Usable from many asyncio tasks at once; every event loop gets its own pools.
    """

    name = "smtp"

    def __init__(
        self, settings: Settings, *, resolver: dns.asyncresolver.Resolver | None = None
    ) -> None:
        self.settings = settings
        self.relay = Relay.from_settings(settings)
        self.timeout = settings.smtp_timeout_seconds
        self.local_hostname = settings.extra.get("KOOMSG_SMTP_HELO_NAME") or None
        self._resolver = resolver
        self._pools = Pools(
            relay=self.relay,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
            per_host=settings.smtp_max_connections_per_host,
            per_enterprise=settings.smtp_max_concurrency_per_enterprise,
        )

    async def send(self, envelope: Envelope) -> DeliveryResult:
        """One result for the envelope.

        With one recipient, that recipient's result. With several: ACCEPTED
        when all were accepted, else the first temporary failure (so the
        message is retried), else the first permanent failure.
        """
        results = await self._send_many(envelope)
        ordered = [results[r] for r in envelope.recipients]
        if not ordered:
            return DeliveryResult.permanent("no recipients")
        for status in (DeliveryStatus.TEMPORARY_FAILURE, DeliveryStatus.PERMANENT_FAILURE):
            for result in ordered:
                if result.status is status:
                    return result
        return ordered[0]

    async def close(self) -> None:
        """Close pooled connections (QUIT on this loop's; others are dropped)."""
        await self._pools.close()

    async def _send_many(self, envelope: Envelope) -> dict[str, DeliveryResult]:
        """A result per envelope recipient, keyed by the address as given.

        In one SMTP transaction per destination, the server may accept some
        recipients (250), defer others (451) and refuse others (550): only the
        temporary ones need a retry.
        """
        async with self._pools.enterprise_slot(envelope.enterprise_id):
            if self.relay is not None:
                route = self.relay.route()
                return await self._deliver_routes([route], list(envelope.recipients), envelope)
            by_domain: dict[str, list[str]] = {}
            for recipient in envelope.recipients:
                by_domain.setdefault(recipient.rpartition("@")[2].lower(), []).append(recipient)
            results: dict[str, DeliveryResult] = {}
            for part in await asyncio.gather(
                *(
                    self._deliver_direct(domain, rcpts, envelope)
                    for domain, rcpts in by_domain.items()
                )
            ):
                results.update(part)
            return results

    async def _deliver_direct(
        self, domain: str, recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        if not domain:
            return dict.fromkeys(
                recipients, DeliveryResult.permanent("501 5.1.3 bad recipient address")
            )
        routes = await direct_routes(
            self._get_resolver(),
            domain,
            self.settings.smtp_direct_port,
            allowed_networks=self.settings.allowed_private_networks,
        )
        if isinstance(routes, DeliveryResult):
            return dict.fromkeys(recipients, routes)
        return await self._deliver_routes(routes, recipients, envelope)

    async def _deliver_routes(
        self, routes: Sequence[Route], recipients: list[str], envelope: Envelope
    ) -> dict[str, DeliveryResult]:
        failures = []
        for route in routes:
            try:
                return await self._pools.deliver(route, recipients, envelope)
            except ConnectFailed as exc:
                failures.append(f"{route.server_name}: {exc}")
        reply = "could not connect: " + "; ".join(failures)
        return dict.fromkeys(recipients, DeliveryResult.temporary(reply))

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            self._resolver = make_resolver(self.settings)
        return self._resolver
