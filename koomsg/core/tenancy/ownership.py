"""The one check that a row a caller names by id is theirs.

Every service that takes an id from an enterprise's caller fetches the row
through ``owned``: a row of another enterprise and a row that does not exist
give the same NOT_FOUND, so ids never reveal what other tenants have.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import inspect
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import NotFound
from koomsg.core.principal import Principal


class TenantRow(Protocol):
    @property
    def enterprise_id(self) -> str | None: ...


RowT = TypeVar("RowT", bound=TenantRow)


def could_name_a_row(model: type[Any], row_id: str) -> bool:
    # An id the key column cannot hold names nothing; asking PostgreSQL anyway fails on NUL
    # ("invalid byte sequence"), which would surface as an internal error instead of NOT_FOUND.
    [key] = inspect(model).primary_key
    limit = getattr(key.type, "length", None)
    return bool(row_id) and "\x00" not in row_id and (limit is None or len(row_id) <= limit)


async def owned(
    session: AsyncSession,
    model: type[RowT],
    row_id: str,
    *,
    principal: Principal,
    message: str,
    field: str | None = "id",
) -> RowT:
    """The ``model`` row ``row_id`` when it belongs to the principal's enterprise.

    Raises NOT_FOUND with ``message`` and ``field`` when the row is missing or another
    enterprise's, and FORBIDDEN (before any lookup) for operators, who act for no enterprise.
    Like ``session.get``, a row already in the session is returned without a query.
    """
    enterprise_id = principal.require_enterprise()
    row = await session.get(model, row_id) if could_name_a_row(model, row_id) else None
    if row is None or row.enterprise_id != enterprise_id:
        raise NotFound(message, field=field)
    return row
