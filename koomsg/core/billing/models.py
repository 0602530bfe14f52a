"""Package offers, purchased packages, reservations and the ledger of charges.

A purchase is final: packages are never refunded, cancelled or changed, so
no code path edits a package other than counting emails on it.

Sending spends emails in two steps. A reservation (before a batch goes out)
holds quota: ``emails_reserved`` on packages, reservation items for
pay-per-use. Settlement (in the transaction that records the outcomes) turns
the items of messages handed to a transport into ledger entries and releases
the rest. The ledger's unique ``message_id`` is what makes a message cost one
email however often its batch is retried.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class BillingMode(enum.StrEnum):
    PAY_PER_USE = "PAY_PER_USE"
    YEARLY = "YEARLY"
    MONTHLY = "MONTHLY"


class PackageOffer(SQLModel, table=True):
    __tablename__ = "package_offer"

    id: str = Field(default_factory=lambda: new_id("pko"), primary_key=True, max_length=40)
    name: str = Field(max_length=128)
    mode: BillingMode = Field(sa_type=String(16))
    email_quota: int
    price_cents: int
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Package(SQLModel, table=True):
    __tablename__ = "package"
    __table_args__ = (Index("ix_package_enterprise_expires", "enterprise_id", "expires_at"),)

    id: str = Field(default_factory=lambda: new_id("pkg"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    offer_id: str = Field(foreign_key="package_offer.id", max_length=40)
    mode: BillingMode = Field(sa_type=String(16))
    email_quota: int
    emails_used: int = 0  # charged in the ledger
    emails_reserved: int = 0  # held by batches being sent
    price_cents: int
    currency: str = Field(max_length=3)
    purchased_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PurchaseKey(SQLModel, table=True):
    """``purchasePackage``'s idempotency keys: a retry with the same key (within the
    window) returns the packages of the first call instead of buying them again."""

    __tablename__ = "purchase_key"
    __table_args__ = (UniqueConstraint("enterprise_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    key: str = Field(max_length=255)
    offer_id: str = Field(max_length=40)
    quantity: int
    package_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Reservation(SQLModel, table=True):
    __tablename__ = "billing_reservation"
    __table_args__ = (Index("ix_billing_reservation_open", "settled_at", "created_at"),)

    id: str = Field(default_factory=lambda: new_id("rsv"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    # The price of a pay-per-use email when reserved: settlement has no settings at hand.
    unit_price_cents: int
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReservationItem(SQLModel, table=True):
    """One message of a reservation: held on a package, on pay-per-use (``package_id``
    None), or already charged before (``prepaid``: a retried message)."""

    __tablename__ = "billing_reservation_item"
    __table_args__ = (Index("ix_billing_reservation_item_message", "message_id"),)

    reservation_id: str = Field(
        foreign_key="billing_reservation.id", primary_key=True, max_length=40
    )
    message_id: str = Field(primary_key=True, max_length=40)
    package_id: str | None = Field(default=None, max_length=40)
    prepaid: bool = False


class LedgerEntry(SQLModel, table=True):
    """One charged email. Kept when messages are purged: it is the billing record."""

    __tablename__ = "billing_ledger"
    __table_args__ = (Index("ix_billing_ledger_enterprise_charged", "enterprise_id", "charged_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=40, unique=True)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    package_id: str | None = Field(default=None, max_length=40)  # None: pay-per-use
    unit_price_cents: int = 0
    currency: str = Field(max_length=3)
    charged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
