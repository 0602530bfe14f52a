"""A real DNS server on loopback for tests: serves a zone the test edits between steps.

    with LocalDnsServer() as dns:
        dns.set_zone('example.com. 300 IN TXT "v=spf1 include:mail.test ~all"')
        settings = make_test_settings(..., KOOMSG_DNS_NAMESERVERS=dns.address)

    with LocalDnsServer(["example.test. 60 IN MX 10 mx1.example.test.",
                         "mx1.example.test. 60 IN A 127.0.0.1"]) as dns:
        ...  # direct MX delivery without the internet

It answers over UDP and TCP on one port (long DKIM records may need TCP),
NXDOMAIN for names it does not hold, an empty answer for names that hold
other types, and SERVFAIL for names given to ``fail()``. ``SilentDnsServer``
reads queries and never answers, to exercise timeouts. The pytest plugin
(``koomsg.testing.plugin``) offers both as the ``dns_server`` and
``silent_dns_server`` fixtures.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, DNSLabel
from dnslib.server import DNSLogger, DNSServer


class ZoneResolver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RR] = []
        self._failing: set[DNSLabel] = set()
        self.queries: list[tuple[str, str]] = []

    def set_zone(self, zone: str | Iterable[str]) -> None:
        text = zone if isinstance(zone, str) else "\n".join(zone)
        records = RR.fromZone(text) if text.strip() else []
        with self._lock:
            self._records = list(records)
            self._failing = set()

    def fail(self, *names: str) -> None:
        with self._lock:
            self._failing.update(DNSLabel(name) for name in names)

    def _lookup(self, qname: DNSLabel, qtype: int) -> tuple[list[RR], bool]:
        at_name = [rr for rr in self._records if rr.rname == qname]
        answers = [rr for rr in at_name if rr.rtype == qtype]
        if not answers and qtype != QTYPE.CNAME:
            for cname in (rr for rr in at_name if rr.rtype == QTYPE.CNAME):
                chased, _ = self._lookup(cname.rdata.label, qtype)
                answers = [cname, *chased]
        exists = bool(at_name) or any(rr.rname.matchSuffix(qname) for rr in self._records)
        return answers, exists

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname, qtype = request.q.qname, request.q.qtype
        with self._lock:
            self.queries.append((str(qname).rstrip("."), QTYPE[qtype]))
            if qname in self._failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            answers, exists = self._lookup(qname, qtype)
        for rr in answers:
            reply.add_answer(rr)
        if not answers and not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def txt(value: str, *, split: int = 255) -> str:
    """A TXT value in zone syntax, split into strings of at most ``split`` characters."""
    chunks = [value[i : i + split] for i in range(0, len(value), split)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def zone_line(rtype: str, name: str, value: str, *, split: int = 255) -> str:
    """One zone line for a record as the API lists it (type, name, expected value)."""
    if rtype == "TXT":
        data = txt(value, split=split)
    elif rtype == "MX":
        data = f"10 {value}."
    else:
        data = f"{value}."
    return f"{name}. 300 IN {rtype} {data}"


def zone_for(
    records: Iterable[dict[str, Any]], *, skip: Iterable[str] = (), split: int = 255
) -> list[str]:
    """Zone lines publishing every record of a domain (``records`` as the API returns
    them: type, name, expectedValue), except those whose name or type is in ``skip``."""
    skipped = set(skip)
    return [
        zone_line(r["type"], r["name"], r["expectedValue"], split=split)
        for r in records
        if r["name"] not in skipped and r["type"] not in skipped
    ]


def dkim_dnsfunc(server: LocalDnsServer | str) -> Callable[..., bytes]:
    """A ``dnsfunc`` for ``dkim.verify`` that asks the loopback server, joining a record's
    strings as receivers do. ``server`` is a ``LocalDnsServer`` or its ``host:port``."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    host, _, port = (server if isinstance(server, str) else server.address).rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(host, int(port))]

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=2)
        except dns.exception.DNSException:
            return b""
        return b"".join(next(iter(answer)).strings)

    return lookup


_QUIET = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)


LOOPBACK = "127.0.0.1"


class LocalDnsServer:
    """A dnslib server on loopback answering from zone-file lines, over UDP and TCP.

    ``zone`` (lines, or one text) is what it serves from the start; ``set_zone``
    replaces it while the server runs. ``address`` (``"127.0.0.1:PORT"``) is the
    form ``KOOMSG_DNS_NAMESERVERS`` takes.
    """

    def __init__(self, zone: str | Iterable[str] = (), *, host: str = LOOPBACK) -> None:
        self.host = host
        self.resolver = ZoneResolver()
        self.resolver.set_zone(zone)
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        """The ``host:port`` form KOOMSG_DNS_NAMESERVERS takes."""
        return f"{self.host}:{self.port}"

    def set_zone(self, zone: str | Iterable[str]) -> None:
        self.resolver.set_zone(zone)

    def fail(self, *names: str) -> None:
        self.resolver.fail(*names)

    def start(self) -> LocalDnsServer:
        for _ in range(20):
            udp = DNSServer(self.resolver, address=self.host, port=0, logger=_QUIET)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self.resolver, address=self.host, port=port, tcp=True, logger=_QUIET
                )
            except OSError:  # the port is taken for TCP: pick another pair
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                # A short poll interval keeps stop() fast (the default waits up to 0.5 s).
                threading.Thread(
                    target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
                ).start()
            return self
        raise RuntimeError("no free loopback port for both UDP and TCP")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> LocalDnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentDnsServer:
    """Takes queries and never answers: every lookup against it times out."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _drain(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self._sock.recv(4096)
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> SilentDnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def dns_server() -> Iterator[LocalDnsServer]:
    """A loopback DNS server with an empty zone; ``set_zone`` fills it."""
    with LocalDnsServer() as server:
        yield server


@pytest.fixture
def silent_dns_server() -> Iterator[SilentDnsServer]:
    with SilentDnsServer() as server:
        yield server
