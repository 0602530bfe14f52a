"""Test kits for koomsg and its plugin authors.

``plugin`` is the pytest plugin (entry point ``pytest11``: fixtures for a
database, a runtime, an HTTP client, SMTP servers and smtp transports);
``smtp`` loopback SMTP and DNS servers and those SMTP fixtures; ``dns`` a
loopback DNS server; ``delivery`` helpers that drive a task through the
delivery pipeline without a broker.
"""
