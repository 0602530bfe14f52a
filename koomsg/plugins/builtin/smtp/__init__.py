"""The ``smtp`` transport plugin; see :mod:`koomsg.plugins.builtin.smtp.transport`."""

from __future__ import annotations

from koomsg.plugins.builtin.smtp.transport import Relay, SmtpTransport, koomsg_transports

__all__ = ["Relay", "SmtpTransport", "koomsg_transports"]
