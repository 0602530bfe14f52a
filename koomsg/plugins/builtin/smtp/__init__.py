"""The ``smtp`` transport: relay through one server, or deliver straight to each domain's MX.

Relay mode (``KOOMSG_SMTP_URL`` set: ``smtp://``, ``smtp+starttls://`` or
``smtps://``, with optional AUTH credentials, ``tls_verify=0`` and
``cafile=``) sends everything through that server. Direct mode
(``KOOMSG_SMTP_URL`` unset) looks up each recipient domain's MX hosts
(``KOOMSG_DNS_NAMESERVERS``), tries them in preference order on port
``KOOMSG_SMTP_DIRECT_PORT``, and uses STARTTLS when offered, without
certificate checks, falling back to plain SMTP when the handshake fails.

Connections are pooled per destination host and carry many messages
(``KOOMSG_SMTP_MAX_CONNECTIONS_PER_HOST``, default 10); at most
``KOOMSG_SMTP_MAX_CONCURRENCY_PER_ENTERPRISE`` (default 50) envelopes of one
enterprise are in flight at once; ``KOOMSG_SMTP_TIMEOUT`` (seconds, default
30) bounds connecting, each command and DATA. Commands are pipelined (RFC
2920) when the server offers it.

Outcomes per recipient: 2xx is ACCEPTED, 5xx PERMANENT_FAILURE with the
server's reply, 4xx, timeouts and dropped connections TEMPORARY_FAILURE.

The modules, in the order a message passes them:

- :mod:`.transport`: :class:`SmtpTransport`, grouping recipients by destination;
- :mod:`.routes`: :class:`Relay` (``KOOMSG_SMTP_URL`` and its TLS) and MX lookup;
- :mod:`.pool`: connections per event loop and host, opportunistic TLS;
- :mod:`.protocol`: one transaction on the wire, replies to ``DeliveryResult``.

This package is the plugin the manager registers: it carries the hook
implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

from koomsg.config import Settings
from koomsg.plugins import hookimpl
from koomsg.plugins.builtin.smtp.routes import Relay
from koomsg.plugins.builtin.smtp.transport import SmtpTransport
from koomsg.plugins.types import Transport

__all__ = ["Relay", "SmtpTransport", "koomsg_transports"]


@hookimpl
def koomsg_transports(settings: Settings) -> Sequence[Transport]:
    return [SmtpTransport(settings)]
