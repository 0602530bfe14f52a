from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class DomainStatus(enum.StrEnum):
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    VERIFICATION_PASSED = "VERIFICATION_PASSED"


class SenderDomain(SQLModel, table=True):
    __tablename__ = "sender_domain"
    __table_args__ = (UniqueConstraint("enterprise_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("dom"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=255)  # A-labels, lower case, no trailing dot
    status: DomainStatus = Field(default=DomainStatus.VERIFICATION_FAILED, sa_type=String(24))
    # The last verification's outcome per record (see verify.RecordCheck.to_json);
    # empty until the first verification, and again after the name changes.
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    last_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The periodic re-check claims a domain by moving this forward (see recheck.py).
    next_check_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DkimKey(SQLModel, table=True):
    """One selector's RSA key pair. Several per domain allow rotation without downtime:
    publish the new selector, then flip ``active``."""

    __tablename__ = "dkim_key"
    __table_args__ = (UniqueConstraint("domain_id", "selector"),)

    id: str = Field(default_factory=lambda: new_id("dkk"), primary_key=True, max_length=40)
    domain_id: str = Field(foreign_key="sender_domain.id", index=True, max_length=40)
    selector: str = Field(max_length=63)
    private_key_encrypted: str = Field(sa_type=Text)  # PEM, Fernet-encrypted with KOOMSG_SECRET_KEY
    public_key: str = Field(sa_type=Text)  # base64 DER SubjectPublicKeyInfo, the p= tag
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
