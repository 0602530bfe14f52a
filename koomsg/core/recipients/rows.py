"""Checks of the recipient rows the import sandbox reads: address, values, duplicates.

Run for every row of files of up to a million rows, so the common case (a plain
ASCII address, short values) takes a few C-level calls; anything unusual takes
the slower, thorough path. A refused row becomes an ``importErrors`` entry.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from koomsg.core.tasks.addresses import normalised_address, recipient_problem
from koomsg.core.templates.params import MAX_PARAM_VALUE
from koomsg.core.templates.render import MAX_RENDERED_CHARS, Compiled, compile_subject, too_big

# Plain ASCII addresses (nearly all of them) checked without email-validator, which
# costs ~30 µs each; anything else still goes through recipient_problem.
_SIMPLE_ADDRESS = re.compile(
    r"([A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*)@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z])?)"
)
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
# Domains as written -> lowercased if the fast path accepts them, else "": a file
# has far fewer domains than rows. Bounded: cleared when full.
_plain_domains: dict[str, str] = {}
_PLAIN_DOMAINS_KEPT = 10_000


def check_address(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, why it is refused)."""
    text = value.strip()
    match = _SIMPLE_ADDRESS.fullmatch(text)
    if match is not None:
        local, domain = match.groups()
        plain = _plain_domains.get(domain)
        if plain is None:
            plain = domain.lower()
            if "--" in plain or plain.rsplit(".", 1)[-1] in _SPECIAL_TLDS:
                plain = ""
            if len(_plain_domains) >= _PLAIN_DOMAINS_KEPT:
                _plain_domains.clear()
            _plain_domains[domain] = plain
        if plain and len(local) <= 64 and len(text) <= 254:
            if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
                local = local.lower()
            return f"{local}@{plain}", None
    problem = recipient_problem(value)
    if problem is not None:
        return None, problem
    return normalised_address(text), None


_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


@dataclass
class RowChecker:
    params: Sequence[str]
    # Params that go into the Subject header: a line break there is a row error.
    header_params: frozenset[str] = frozenset()
    # The task's template and subject, to refuse rows that would render too big.
    compiled: Compiled | None = None
    subject: str = ""
    # A dict, not a set: holding only ints, it is never traversed by the garbage
    # collector, which would otherwise walk a million entries at every full collection.
    seen: dict[int, None] = field(default_factory=dict)

    def check(
        self,
        rows: Sequence[Sequence[Any]],
        good: list[tuple[str, ...]],
        bad: list[tuple[int, str, str]],
    ) -> None:
        """Sort the child's ``[number, email, value, ...]`` rows into ``good`` recipients
        (normalised address, value, ...) and ``bad`` ones (row, value, why)."""
        params = tuple(self.params)
        width = len(params) + 2
        seen = self.seen
        # One loop for a whole batch, C-level helpers inside: ~1 µs a row matters here.
        for row in rows:
            if len(row) != width:
                raise ValueError("the reader wrote a row of the wrong width")
            raw = row[1] if type(row[1]) is str else str(row[1])
            address, problem = check_address(raw)
            if address is None:
                bad.append((int(row[0]), raw, f"invalid address: {problem}"))
                continue
            values = row[2:]
            if "" in map(str.strip, map(str, values)):
                name = next(n for n, v in zip(params, values, strict=False) if not str(v).strip())
                bad.append((int(row[0]), raw, f"missing value for parameter {name}"))
                continue
            if max(map(len, values), default=0) > MAX_PARAM_VALUE:
                name = next(
                    n for n, v in zip(params, values, strict=False) if len(v) > MAX_PARAM_VALUE
                )
                bad.append(
                    (
                        int(row[0]),
                        raw,
                        f"the value of {name} has more than {MAX_PARAM_VALUE} characters",
                    )
                )
                continue
            if self.header_params and (problem := self._header_problem(params, values)):
                bad.append((int(row[0]), raw, problem))
                continue
            if self.compiled is not None and (problem := self._size_problem(params, values)):
                bad.append((int(row[0]), raw, problem))
                continue
            # hash() of the folded address: 8 bytes a row instead of the string (1 M rows).
            key = hash(address.lower())
            if key in seen:
                bad.append((int(row[0]), raw, "duplicate address"))
                continue
            seen[key] = None
            # A flat tuple of strings: untracked by the garbage collector (see writer.py).
            good.append((address, *values))

    def __post_init__(self) -> None:
        base, weights = self.compiled.size_weights() if self.compiled else (0, {})
        subject = compile_subject(self.subject)
        in_subject = Counter(name for name, _ in subject.slots)
        self._base = base + sum(map(len, subject.literals))
        self._weights = [weights.get(name, 0) + in_subject[name] for name in self.params]

    def _size_problem(self, params: Sequence[str], values: Sequence[Any]) -> str | None:
        assert self.compiled is not None
        bound = self._base + sum(w * len(v) for w, v in zip(self._weights, values, strict=False))
        # Cheap first: only a row whose upper bound is over the limit is measured exactly.
        if bound <= MAX_RENDERED_CHARS:
            return None
        return too_big(self.compiled, self.subject, dict(zip(params, values, strict=False)))

    def _header_problem(self, params: Sequence[str], values: Sequence[Any]) -> str | None:
        for name, value in zip(params, values, strict=False):
            if name in self.header_params and _HEADER_UNSAFE.search(str(value)):
                return (
                    f"the value of {name} goes into the subject and must not contain line "
                    "breaks or control characters"
                )
        return None
