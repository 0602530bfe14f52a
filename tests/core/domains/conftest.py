from __future__ import annotations

from koomsg.testing.dns import dns_server, silent_dns_server  # noqa: F401  (fixtures)
