"""``owned``: a caller's own row, else one NOT_FOUND whether missing or another tenant's."""

from __future__ import annotations

import pytest

from koomsg.core.errors import Forbidden, NotFound
from koomsg.core.iam.models import IamUser
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.ownership import owned
from koomsg.runtime import Runtime

OPERATOR = Principal(PrincipalKind.OPERATOR, "op", "key")
MISSING = "usr_00000000000000000000000000"


async def tenant(runtime: Runtime, name: str) -> tuple[Principal, str]:
    """A principal of a new enterprise, and the id of an IAM user it owns."""
    async with runtime.db.transaction() as session:
        enterprise = Enterprise(name=name)
        session.add(enterprise)
        await session.flush()
        user = IamUser(enterprise_id=enterprise.id, name=f"{name}-user")
        session.add(user)
        await session.flush()
    principal = Principal(PrincipalKind.ENTERPRISE_ROOT, name, "key", enterprise_id=enterprise.id)
    return principal, user.id


async def refusal(
    runtime: Runtime, principal: Principal, row_id: str
) -> tuple[str, str, str | None]:
    async with runtime.db.session() as session:
        with pytest.raises(NotFound) as raised:
            await owned(
                session,
                IamUser,
                row_id,
                principal=principal,
                message="no such user",
                field="userId",
            )
    return raised.value.code, raised.value.message, raised.value.field


async def test_own_row_is_returned(runtime: Runtime) -> None:
    principal, user_id = await tenant(runtime, "Acme")
    async with runtime.db.session() as session:
        user = await owned(session, IamUser, user_id, principal=principal, message="no such user")
    assert (user.id, user.enterprise_id) == (user_id, principal.enterprise_id)


async def test_missing_row_is_not_found_with_the_callers_message_and_field(
    runtime: Runtime,
) -> None:
    principal, _ = await tenant(runtime, "Acme")
    assert await refusal(runtime, principal, MISSING) == ("NOT_FOUND", "no such user", "userId")


async def test_another_tenants_row_looks_exactly_like_a_missing_one(runtime: Runtime) -> None:
    principal, _ = await tenant(runtime, "Acme")
    _, theirs = await tenant(runtime, "Other")
    assert await refusal(runtime, principal, theirs) == await refusal(runtime, principal, MISSING)


@pytest.mark.parametrize(
    "row_id",
    ["", "usr_\x00", "\x00", "usr_" + "0" * 100],
    ids=["empty", "nul", "only-nul", "longer-than-the-column"],
)
async def test_malformed_ids_are_not_found_not_a_database_error(
    runtime: Runtime, row_id: str
) -> None:
    # PostgreSQL refuses NUL in text outright; the helper never asks it.
    principal, _ = await tenant(runtime, "Acme")
    assert await refusal(runtime, principal, row_id) == await refusal(runtime, principal, MISSING)


async def test_field_may_be_left_out(runtime: Runtime) -> None:
    principal, _ = await tenant(runtime, "Acme")
    async with runtime.db.session() as session:
        with pytest.raises(NotFound) as raised:
            await owned(session, IamUser, MISSING, principal=principal, message="gone", field=None)
    assert (raised.value.message, raised.value.field) == ("gone", None)


async def test_operators_act_for_no_enterprise_and_learn_nothing(runtime: Runtime) -> None:
    _, user_id = await tenant(runtime, "Acme")
    async with runtime.db.session() as session:
        for row_id in (user_id, MISSING):
            with pytest.raises(Forbidden):
                await owned(session, IamUser, row_id, principal=OPERATOR, message="no such user")
