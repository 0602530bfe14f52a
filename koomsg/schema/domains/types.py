from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from koomsg.core.domains import models
from koomsg.core.domains.names import unicode_form
from koomsg.core.domains.service import RecordView, describe_records
from koomsg.schema.common import Node
from koomsg.schema.context import Info


# Declared here rather than wrapped around core's enums so type checkers see classes.
@strawberry.enum(description="A DNS record type.")
class DnsRecordType(enum.Enum):
    CNAME = "CNAME"
    MX = "MX"
    TXT = "TXT"


@strawberry.enum(
    description="VERIFICATION_PASSED once every required record was found as expected."
)
class DomainStatus(enum.Enum):
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    VERIFICATION_PASSED = "VERIFICATION_PASSED"


@strawberry.enum(description="The outcome of the last verification for one record.")
class RecordStatus(enum.Enum):
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


@strawberry.type(
    description="A record to publish at your DNS provider, and what verification found."
)
class DnsRecord:
    type: DnsRecordType
    name: str = strawberry.field(description='Fully qualified, e.g. "_dmarc.example.com".')
    expected_value: str = strawberry.field(
        description="The value to publish. A long TXT value may be split into several strings."
    )
    found_values: list[str] = strawberry.field(description="What the last verification saw.")
    status: RecordStatus
    required: bool = strawberry.field(
        description="CNAME and TXT records are required to pass; the MX record is not."
    )
    hint: str | None = strawberry.field(
        description="Why the record failed, and what to do about it."
    )

    @classmethod
    def from_view(cls, view: RecordView) -> DnsRecord:
        return cls(
            type=DnsRecordType(view.record.type.value),
            name=view.record.name,
            expected_value=view.record.value,
            found_values=view.found,
            status=RecordStatus.SUCCESSFUL if view.successful else RecordStatus.FAILED,
            required=view.record.required,
            hint=view.hint,
        )


@strawberry.type(
    description="A domain the enterprise sends from. Publish its records, then verify it; "
    "sender addresses can only be created on a domain that passed."
)
class SenderDomain(Node):
    id: strawberry.ID
    name: str = strawberry.field(
        description="The domain as DNS knows it: lower case, internationalised names as A-labels "
        "(xn--...)."
    )
    unicode_name: str = strawberry.field(description="The domain as people read it (U-labels).")
    status: DomainStatus
    dkim_selector: str = strawberry.field(
        description="The DKIM selector: the key is published at <selector>._domainkey.<name>."
    )
    last_verified_at: datetime | None = strawberry.field(
        description="When the records were last looked up, by you or by the periodic re-check."
    )
    created_at: datetime
    row: strawberry.Private[models.SenderDomain]
    key: strawberry.Private[models.DkimKey]

    @strawberry.field(description="The records to publish, with the last verification's outcome.")
    def records(self, info: Info) -> list[DnsRecord]:
        # Targets come from the server's settings, so records are described per request.
        views = describe_records(self.row, self.key, info.context.runtime.settings)
        return [DnsRecord.from_view(view) for view in views]

    @classmethod
    def from_row(cls, row: models.SenderDomain, key: models.DkimKey) -> SenderDomain:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            unicode_name=unicode_form(row.name),
            status=DomainStatus(str(row.status)),
            dkim_selector=key.selector,
            last_verified_at=row.last_verified_at,
            created_at=row.created_at,
            row=row,
            key=key,
        )


@strawberry.input(description="Narrow the list of sender domains.")
class SenderDomainFilter:
    name: str | None = strawberry.field(default=None, description="Part of the domain name.")
    status: DomainStatus | None = None


@strawberry.input
class CreateSenderDomainInput:
    name: str = strawberry.field(
        description="A registered domain name, 1 to 66 characters, e.g. example.com."
    )
