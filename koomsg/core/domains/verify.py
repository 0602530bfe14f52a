"""Checking a domain's published DNS records against the expected ones.

Every failure carries a hint a person can act on; the checks are stricter and
more forgiving than the hosted consoles where the RFCs are: SPF records that
merge our include with others pass, split TXT strings are joined, and SPF's
ten-lookup limit and the one-record rule are enforced.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from koomsg.core.domains.records import ExpectedRecord, RecordKind

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4


class Outcome(enum.StrEnum):
    OK = "OK"
    NXDOMAIN = "NXDOMAIN"
    NO_ANSWER = "NO_ANSWER"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    values: list[str] = field(default_factory=list)
    detail: str = ""


class DnsClient(Protocol):
    timeout: float

    async def query(self, name: str, rdtype: str) -> Answer: ...


def _text(rdata: Any, rdtype: str) -> str:
    if rdtype == "TXT":
        # A TXT value longer than 255 bytes is published as several strings: one value.
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "CNAME":
        return str(rdata.target).rstrip(".").lower()
    if rdtype == "MX":
        return f"{rdata.preference} {str(rdata.exchange).rstrip('.').lower()}"
    return str(rdata.to_text())


class ResolverClient:
    """dnspython's async resolver, without a cache so a re-check sees today's zone."""

    def __init__(self, nameservers: Sequence[tuple[str, int]], *, timeout: float) -> None:
        self.timeout = timeout
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
            ]
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout

    async def query(self, name: str, rdtype: str) -> Answer:
        try:
            answer = await self._resolver.resolve(dns.name.from_text(name), rdtype)
        except dns.resolver.NXDOMAIN:
            return Answer(Outcome.NXDOMAIN)
        except dns.resolver.NoAnswer:
            return Answer(Outcome.NO_ANSWER)
        except dns.exception.Timeout:
            return Answer(Outcome.TIMEOUT)
        except dns.resolver.NoNameservers as exc:
            return Answer(Outcome.ERROR, detail=_servfail_detail(exc))
        except dns.exception.DNSException as exc:
            return Answer(Outcome.ERROR, detail=str(exc) or type(exc).__name__)
        return Answer(Outcome.OK, [_text(rdata, rdtype) for rdata in answer])


def _servfail_detail(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    answers = {str(err[3]) for err in errors if len(err) > 3 and err[3] is not None}
    return "; ".join(sorted(answers)) or "no DNS server could answer"


@dataclass(frozen=True)
class RecordCheck:
    record: ExpectedRecord
    successful: bool
    found: list[str]
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": str(self.record.type),
            "name": self.record.name,
            "expected": self.record.value,
            "found": self.found,
            "status": "SUCCESSFUL" if self.successful else "FAILED",
            "hint": self.hint,
        }


def _lookup_hint(record: ExpectedRecord, answer: Answer, timeout: float) -> str:
    kind = record.type.value
    if answer.outcome is Outcome.NXDOMAIN:
        return (
            f"{record.name} does not exist in DNS (NXDOMAIN): add a {kind} record with the "
            "expected value at your DNS provider; new records can take a few minutes to appear"
        )
    if answer.outcome is Outcome.NO_ANSWER:
        return f"{record.name} exists but has no {kind} record: add one with the expected value"
    if answer.outcome is Outcome.TIMEOUT:
        return (
            f"the DNS servers did not answer for {record.name} within {timeout:g} s; "
            "this is usually temporary: verify again later"
        )
    return (
        f"the DNS servers could not answer for {record.name} ({answer.detail}); verify again later"
    )


def _failed(record: ExpectedRecord, found: list[str], hint: str) -> RecordCheck:
    return RecordCheck(record, False, found, hint)


async def _check_cname(record: ExpectedRecord, client: DnsClient) -> RecordCheck:
    answer = await client.query(record.name, "CNAME")
    if answer.outcome is not Outcome.OK:
        return _failed(record, [], _lookup_hint(record, answer, client.timeout))
    if record.target in answer.values:
        return RecordCheck(record, True, answer.values)
    where = ", ".join(answer.values)
    return _failed(
        record,
        answer.values,
        f"{record.name} points to {where}, not {record.target}: change the CNAME target",
    )


async def _check_mx(record: ExpectedRecord, client: DnsClient) -> RecordCheck:
    answer = await client.query(record.name, "MX")
    if answer.outcome is not Outcome.OK:
        return _failed(record, [], _lookup_hint(record, answer, client.timeout))
    hosts = [value.split(" ", 1)[-1] for value in answer.values]
    if record.target in hosts:
        return RecordCheck(record, True, answer.values)
    return _failed(
        record,
        answer.values,
        f"the MX records of {record.name} point to {', '.join(hosts)}, not {record.target}",
    )


def _is_spf(value: str) -> bool:
    return value.lower() == "v=spf1" or value.lower().startswith("v=spf1 ")


def _spf_terms(value: str) -> tuple[int, list[str]]:
    """DNS lookups this record costs itself, and the domains it pulls in (include, redirect)."""
    lookups, targets = 0, []
    for term in value.split()[1:]:
        term = term.lower()
        mechanism = term.lstrip("+-~?")
        name = mechanism.split(":", 1)[0].split("/", 1)[0]
        if name in ("a", "mx", "ptr", "exists"):
            lookups += 1
        elif name == "include" or term.startswith("redirect="):
            lookups += 1
            target = mechanism.split(":", 1)[1] if name == "include" else term.split("=", 1)[1]
            if "%" not in target:  # macros depend on the sender: cannot be followed here
                targets.append(target.rstrip("."))
    return lookups, targets


async def _spf_lookups(client: DnsClient, value: str, seen: set[str], depth: int = 0) -> int:
    lookups, targets = _spf_terms(value)
    if lookups > SPF_LOOKUP_LIMIT or depth >= SPF_LOOKUP_LIMIT:
        return lookups
    fresh = [t for t in dict.fromkeys(targets) if t not in seen]
    seen.update(fresh)

    async def nested(target: str) -> int:
        answer = await client.query(target, "TXT")
        records = [v for v in answer.values if _is_spf(v)]
        # A broken include is its owner's problem; it costs no further lookups.
        return await _spf_lookups(client, records[0], seen, depth + 1) if len(records) == 1 else 0

    return lookups + sum(await asyncio.gather(*(nested(t) for t in fresh)))


async def _check_spf(record: ExpectedRecord, client: DnsClient) -> RecordCheck:
    answer = await client.query(record.name, "TXT")
    if answer.outcome not in (Outcome.OK, Outcome.NO_ANSWER):
        return _failed(record, [], _lookup_hint(record, answer, client.timeout))
    spf = [value for value in answer.values if _is_spf(value)]
    if not spf:
        return _failed(
            record,
            answer.values,
            f"no SPF record (a TXT record starting with v=spf1) at {record.name}: "
            "add the expected value",
        )
    if len(spf) > 1:
        return _failed(
            record,
            spf,
            f"more than one SPF record at {record.name}: receivers then treat SPF as broken "
            f"(RFC 7208 4.5); merge them into one record that contains include:{record.target}",
        )
    _, includes = _spf_terms(spf[0])
    if record.target not in includes:
        return _failed(
            record,
            spf,
            f"the SPF record at {record.name} does not include {record.target}: "
            f"add include:{record.target} before its all mechanism",
        )
    lookups = await _spf_lookups(client, spf[0], {record.name})
    if lookups > SPF_LOOKUP_LIMIT:
        return _failed(
            record,
            spf,
            f"the SPF record at {record.name} needs at least {lookups} DNS lookups, more than the "
            f"{SPF_LOOKUP_LIMIT} receivers allow (RFC 7208 4.6.4): remove or flatten some includes",
        )
    return RecordCheck(record, True, spf)


def _dkim_tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        key, sep, tag_value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(tag_value.split())
    return tags


async def _check_dkim(record: ExpectedRecord, client: DnsClient) -> RecordCheck:
    answer = await client.query(record.name, "TXT")
    if answer.outcome is not Outcome.OK:
        return _failed(record, [], _lookup_hint(record, answer, client.timeout))
    keys = [_dkim_tags(value).get("p") for value in answer.values]
    if record.target in keys:
        return RecordCheck(record, True, answer.values)
    if all(key is None for key in keys):
        return _failed(
            record,
            answer.values,
            f"the TXT record at {record.name} is not a DKIM key (it has no p= tag)",
        )
    return _failed(
        record,
        answer.values,
        f"the DKIM key published at {record.name} differs from this domain's key: replace the TXT "
        "value with the expected one, entered whole (providers that limit a string to 255 "
        "characters split it for you)",
    )


_CHECKS = {
    RecordKind.DMARC: _check_cname,
    RecordKind.TRACKING: _check_cname,
    RecordKind.MX: _check_mx,
    RecordKind.SPF: _check_spf,
    RecordKind.DKIM: _check_dkim,
}


async def _check(record: ExpectedRecord, client: DnsClient) -> RecordCheck:
    # An SPF include chain is several lookups in a row: bound the whole record, not each query.
    try:
        return await asyncio.wait_for(_CHECKS[record.kind](record, client), client.timeout * 3)
    except TimeoutError:
        return _failed(
            record, [], _lookup_hint(record, Answer(Outcome.TIMEOUT), client.timeout * 3)
        )


async def check_records(
    records: Sequence[ExpectedRecord], *, client: DnsClient
) -> list[RecordCheck]:
    """Look every record up concurrently; the result is in the order of ``records``."""
    return list(await asyncio.gather(*(_check(record, client) for record in records)))


def passes(checks: Sequence[RecordCheck]) -> bool:
    return all(check.successful for check in checks if check.record.required)
