"""Prometheus metrics of the process, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "koomsg_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "koomsg_http_request_seconds", "Time to answer an HTTP request", ["method", "route"]
)
MESSAGES = Counter("koomsg_messages_total", "Message outcomes recorded", ["status"])
