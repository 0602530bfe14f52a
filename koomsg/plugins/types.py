"""The values that cross the plugin boundary. Partners import these."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Envelope:
    """One message ready for the wire: signed bytes plus the SMTP envelope."""

    message_id: str
    enterprise_id: str
    mail_from: str
    recipients: Sequence[str]
    data: bytes
    rfc_message_id: str


class DeliveryStatus(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    TEMPORARY_FAILURE = "TEMPORARY_FAILURE"
    PERMANENT_FAILURE = "PERMANENT_FAILURE"


@dataclass(frozen=True)
class DeliveryResult:
    """What the receiving side said: a 2xx accepts, 4xx is retried, 5xx is final."""

    status: DeliveryStatus
    reply: str = ""
    code: int | None = None
    accepted_at: datetime | None = None

    @classmethod
    def accepted(cls, reply: str = "250 OK", code: int = 250) -> DeliveryResult:
        return cls(DeliveryStatus.ACCEPTED, reply, code)

    @classmethod
    def temporary(cls, reply: str, code: int | None = None) -> DeliveryResult:
        return cls(DeliveryStatus.TEMPORARY_FAILURE, reply, code)

    @classmethod
    def permanent(cls, reply: str, code: int | None = None) -> DeliveryResult:
        return cls(DeliveryStatus.PERMANENT_FAILURE, reply, code)


@runtime_checkable
class Transport(Protocol):
    """Delivers envelopes. ``send`` must not raise for a delivery failure: return it."""

    name: str

    async def send(self, envelope: Envelope) -> DeliveryResult: ...

    async def close(self) -> None: ...


class ReviewOutcome(enum.StrEnum):
    APPROVE = "APPROVE"
    HOLD = "HOLD"
    REJECT = "REJECT"


@dataclass(frozen=True)
class ReviewDecision:
    outcome: ReviewOutcome
    reason: str | None = None
    reviewer: str = "policy"


@dataclass(frozen=True)
class TemplateForReview:
    id: str
    name: str
    body_type: str
    body: str
    params: Sequence[str]
    support_unsubscribe: bool
    # Which revision is reviewed: every edit makes a new one (1 for a new template).
    revision: int = 1


@dataclass(frozen=True)
class EnterpriseInfo:
    id: str
    name: str
    industry_class: str
    real_name_verified: bool


@dataclass(frozen=True)
class BillingReservation:
    """A plugin's answer to a reservation: ``allowed`` false refuses with ``reason``.

    With ``allowed`` true, ``allowed_message_ids`` says which messages may go:
    None (the default, or ``BillingReservation.allow_all()``) means every message
    of the batch; a list means exactly those, so an EMPTY list means NONE (the rest
    are REJECTED with ``reason``). "All" is never implied by an empty answer.
    """

    allowed: bool
    reservation_id: str | None = None
    reason: str | None = None
    allowed_message_ids: Sequence[str] | None = None

    @classmethod
    def allow_all(cls, reservation_id: str | None = None) -> BillingReservation:
        return cls(allowed=True, reservation_id=reservation_id, allowed_message_ids=None)

    def allowed_ids(self, batch: Sequence[str]) -> set[str]:
        """The ids of ``batch`` this answer lets through."""
        if not self.allowed:
            return set()
        if self.allowed_message_ids is None:
            return set(batch)
        return set(self.allowed_message_ids) & set(batch)


@dataclass(frozen=True)
class MessageOutcome:
    message_id: str
    handed_to_transport: bool
    status: str


@dataclass(frozen=True)
class MessageEvent:
    kind: str  # "status", "open", "click", "unsubscribe"
    enterprise_id: str
    message_id: str
    task_id: str | None
    status: str | None = None
    occurred_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublicTemplate:
    """A built-in template offered to every enterprise."""

    key: str
    name: str
    body_type: str  # "RICH_TEXT" or "PLAIN_TEXT"
    body: str
    subject: str = ""
    support_unsubscribe: bool = False
