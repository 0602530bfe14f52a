"""pytest fixtures for koomsg and its plugins (registered as a pytest plugin).

The database under test is chosen by ``KOOMSG_TEST_DATABASE``: ``sqlite``
(default; a file in a temporary folder) or ``postgresql`` (a fresh database
``koomsg_test_<random>`` on ``KOOMSG_TEST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``, dropped at the end). The
broker is ``KOOMSG_TEST_BROKER_URL`` (unset: in-process). Migrations run once
per session; every table is emptied after each test.

Tests talk to the API over HTTP exactly as a frontend does: ``api`` posts
GraphQL to the ASGI app through httpx, and ``api.upload`` sends GraphQL
multipart requests. ``dns_server`` is a loopback DNS server (``set_zone`` fills
it; point ``KOOMSG_DNS_NAMESERVERS`` at ``dns_server.address`` through
``koomsg_env``); ``silent_dns_server`` never answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from koomsg.config import Settings, load_settings
from koomsg.core.db import Database
from koomsg.runtime import Runtime

# Loopback SMTP servers and transports: smtp_server, make_smtp_server, smtp_transport, ...
# and loopback DNS servers: dns_server, silent_dns_server.
pytest_plugins = ["koomsg.testing.smtp", "koomsg.testing.dns"]

TEST_SECRET = "test-secret-key-0123456789abcdef"
TEST_RATE_LIMITS = {
    "KOOMSG_RATE_LIMIT_STORAGE": "memory",
    "KOOMSG_RATE_LIMIT_RPS": "100000",
    "KOOMSG_RATE_LIMIT_BURST": "100000",
    "KOOMSG_AUTH_FAILURES_PER_MINUTE": "100000",
}


def _pg_admin_url() -> str:
    return os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_pg_admin_url())
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def koomsg_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session."""
    from koomsg.migrations import upgrade

    kind = os.environ.get("KOOMSG_TEST_DATABASE", "sqlite")
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'koomsg.db'}"
        upgrade(url)
        yield url
        return
    if kind != "postgresql":
        raise pytest.UsageError("KOOMSG_TEST_DATABASE must be sqlite or postgresql")
    name = f"koomsg_test_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = _pg_admin_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_test_settings(database_url: str, data_dir: Path, **overrides: str) -> Settings:
    env = {
        "KOOMSG_DATA_DIR": str(data_dir),
        "KOOMSG_DATABASE_URL": database_url,
        "KOOMSG_SECRET_KEY": TEST_SECRET,
        "KOOMSG_PUBLIC_URL": "http://127.0.0.1:8000",
        # Per-test buckets that no ordinary test reaches: with the PostgreSQL + Redis defaults
        # every test would spend from the same shared buckets. Tests of the limits set theirs.
        **TEST_RATE_LIMITS,
    }
    broker = os.environ.get("KOOMSG_TEST_BROKER_URL")
    if broker:
        env["KOOMSG_BROKER_URL"] = broker
    env.update(overrides)
    return load_settings({k: v for k, v in env.items() if v is not None})


@pytest.fixture
def koomsg_env() -> dict[str, str]:
    """Extra ``KOOMSG_*`` variables for ``koomsg_settings``; override it in a test module,
    e.g. to point ``KOOMSG_DNS_NAMESERVERS`` at a loopback DNS server."""
    return {}


@pytest.fixture
def koomsg_settings(
    koomsg_database_url: str, tmp_path: Path, koomsg_env: dict[str, str]
) -> Settings:
    return make_test_settings(koomsg_database_url, tmp_path / "var", **koomsg_env)


async def _empty_all_tables(url: str) -> None:
    from koomsg.core.models import metadata

    db = Database(url)
    try:
        async with db.transaction() as session:
            tables = list(reversed(metadata.sorted_tables))
            if db.engine.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                await session.execute(text(f"TRUNCATE {names} CASCADE"))
            else:
                for table in tables:
                    await session.execute(table.delete())
    finally:
        await db.dispose()


@pytest_asyncio.fixture
async def runtime(koomsg_settings: Settings) -> AsyncIterator[Runtime]:
    """The process runtime an API test runs against; tables are emptied afterwards."""
    built = Runtime.build(koomsg_settings)
    try:
        yield built
    finally:
        await built.close()
        await _empty_all_tables(koomsg_settings.database_url)


@dataclass
class GraphQLResponse:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    def ok(self) -> Any:
        """The data, asserting there was no error."""
        assert not self.errors, f"unexpected GraphQL errors: {self.errors}"
        return self.data

    def error(self, code: str, field: str | None = None) -> dict[str, Any]:
        """The first error, asserting its code (and field, when given)."""
        assert self.errors, f"expected a {code} error, got data {self.data}"
        first = self.errors[0]
        extensions = first.get("extensions") or {}
        assert extensions.get("code") == code, f"expected {code}, got {first}"
        if field is not None:
            assert extensions.get("field") == field, f"expected field {field!r}, got {first}"
        return first


@dataclass
class Api:
    """Posts GraphQL to the app over HTTP, as a frontend does."""

    client: httpx.AsyncClient
    key: str | None = None
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, key: str | None) -> dict[str, str]:
        secret = key if key is not None else self.key
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None
    ) -> GraphQLResponse:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers(key),
        )
        return GraphQLResponse(response.status_code, response.json())

    async def upload(
        self,
        query: str,
        variables: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]],
        *,
        key: str | None = None,
    ) -> GraphQLResponse:
        """A GraphQL multipart request; ``files`` maps a variable path to (name, bytes, type)."""
        names = {str(i): path for i, path in enumerate(files)}
        form = {
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps({i: [f"variables.{path}"] for i, path in names.items()}),
        }
        uploads = {i: files[path] for i, path in names.items()}
        response = await self.client.post(
            "/graphql", data=form, files=uploads, headers=self.headers(key)
        )
        return GraphQLResponse(response.status_code, response.json())


@pytest_asyncio.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    from koomsg.web.app import create_app

    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest_asyncio.fixture
async def operator_key(runtime: Runtime) -> str:
    from koomsg.core.iam.keys import issue_key
    from koomsg.core.principal import PrincipalKind

    async with runtime.db.transaction() as session:
        _, secret = await issue_key(session, kind=PrincipalKind.OPERATOR, name="test-operator")
    return secret


@pytest.fixture
def api(http: httpx.AsyncClient, operator_key: str) -> Api:
    """An API client; ``api.key`` is the key used when a call names none."""
    return Api(client=http, keys={"operator": operator_key})


CREATE_ENTERPRISE = """
mutation($input: CreateEnterpriseInput!) { createEnterprise(input: $input) { id name } }
"""
CREATE_ROOT_KEY = "mutation($id: ID!) { createEnterpriseRootKey(enterpriseId: $id) { secret } }"
ENABLE = "mutation { enableService(acceptTerms: true) { id serviceEnabled } }"


@dataclass
class EnterpriseHandle:
    id: str
    name: str
    key: str


async def new_enterprise(
    api: Api,
    name: str = "Acme",
    *,
    sensitive: bool = False,
    verified: bool = True,
    enable: bool = True,
) -> EnterpriseHandle:
    """An enterprise made through the operator API, with its root key (enabled by default)."""
    operator = api.keys["operator"]
    created = (
        await api(
            CREATE_ENTERPRISE,
            {
                "input": {
                    "name": name,
                    "realNameVerified": verified,
                    "industryClass": "SENSITIVE" if sensitive else "NON_SENSITIVE",
                }
            },
            key=operator,
        )
    ).ok()["createEnterprise"]
    secret = (await api(CREATE_ROOT_KEY, {"id": created["id"]}, key=operator)).ok()[
        "createEnterpriseRootKey"
    ]["secret"]
    if enable:
        (await api(ENABLE, key=secret)).ok()
    return EnterpriseHandle(id=created["id"], name=name, key=secret)


@pytest_asyncio.fixture
async def enterprise(api: Api) -> EnterpriseHandle:
    """An enabled, verified, non-sensitive enterprise; ``api.key`` is set to its root key."""
    made = await new_enterprise(api, "Acme")
    api.key = made.key
    return made


@pytest.fixture
def make_enterprise(api: Api) -> Callable[..., Any]:
    async def make(name: str = "Other", **options: Any) -> EnterpriseHandle:
        return await new_enterprise(api, name, **options)

    return make


async def count_rows(runtime: Runtime, table: str) -> int:
    """How many rows a table holds: tests check that failures write nothing."""
    async with runtime.db.session() as session:
        return int((await session.execute(text(f'SELECT COUNT(*) FROM "{table}"'))).scalar_one())


def _files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file())


async def storage_snapshot(runtime: Runtime, tables: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rows per table (every table, unless ``tables`` names some) and the files under the
    data folder (saved uploads, outbox): what an operation could have written."""
    from koomsg.core.models import metadata

    snapshot: dict[str, Any] = {}
    async with runtime.db.session() as session:
        for name in tables or sorted(metadata.tables):
            count = await session.execute(text(f'SELECT COUNT(*) FROM "{name}"'))
            snapshot[f"rows in {name}"] = int(count.scalar_one())
    snapshot["files"] = _files_under(Path(runtime.settings.data_dir))
    return snapshot


@asynccontextmanager
async def writes_nothing(runtime: Runtime, *tables: str) -> AsyncIterator[None]:
    """Fails if the block adds or removes a row (in ``tables``, or any table) or a file
    under the data folder: a refused operation must leave no trace."""
    before = await storage_snapshot(runtime, tables)
    yield
    after = await storage_snapshot(runtime, tables)
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f"a refused operation wrote something (before, after): {changed}"


WritesNothing = Callable[..., AbstractAsyncContextManager[None]]


@pytest.fixture
def assert_writes_nothing(runtime: Runtime) -> WritesNothing:
    """``async with assert_writes_nothing(): ...`` around a call that must fail cleanly;
    ``assert_writes_nothing("message")`` watches only the tables it names."""

    def watch(*tables: str) -> AbstractAsyncContextManager[None]:
        return writes_nothing(runtime, *tables)

    return watch


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes several seconds (subprocesses, real servers)")
    config.addinivalue_line(
        "markers", "broker: exercises the message broker (run again on each broker)"
    )


@dataclass
class SendableSetup:
    """What a sending test needs: an APPROVED template and a sender on a verified domain."""

    template_id: str
    sender_address_id: str
    sender: str
    domain_id: str


async def sendable_setup(
    api: Api,
    runtime: Runtime,
    *,
    body: str = "<p>Hello</p>",
    template_name: str = "Welcome",
    domain: str = "mail.example.com",
    prefix: str = "news",
    key: str | None = None,
) -> SendableSetup:
    """Template and address through the API; only the domain's status is forced in the
    database (real verification needs DNS), so tests of sending skip it."""
    from sqlalchemy import update

    from koomsg.core.domains.models import DomainStatus, SenderDomain

    template = (
        await api(
            "mutation($input: CreateTemplateInput!) "
            "{ createTemplate(input: $input) { id status } }",
            {"input": {"name": template_name, "bodyType": "RICH_TEXT", "body": body}},
            key=key,
        )
    ).ok()["createTemplate"]
    assert template["status"] == "APPROVED", template
    made = (
        await api(
            "mutation($input: CreateSenderDomainInput!) "
            "{ createSenderDomain(input: $input) { id } }",
            {"input": {"name": domain}},
            key=key,
        )
    ).ok()["createSenderDomain"]
    async with runtime.db.transaction() as session:
        await session.execute(
            update(SenderDomain)
            .where(SenderDomain.id == made["id"])  # type: ignore[arg-type]
            .values(status=DomainStatus.VERIFICATION_PASSED)
        )
    address = (
        await api(
            "mutation($input: CreateSenderAddressInput!) "
            "{ createSenderAddress(input: $input) { id address } }",
            {"input": {"domainId": made["id"], "prefix": prefix}},
            key=key,
        )
    ).ok()["createSenderAddress"]
    return SendableSetup(template["id"], address["id"], address["address"], made["id"])


async def suppress_address(
    runtime: Runtime, enterprise_id: str, address: str, reason: str = "MANUAL"
) -> None:
    """Put ``address`` on an enterprise's suppression list, as a bounce or unsubscribe would."""
    from koomsg.core.recipients.models import SuppressionReason
    from koomsg.core.recipients.service import suppress

    async with runtime.db.transaction() as session:
        await suppress(
            session, enterprise_id=enterprise_id, address=address, reason=SuppressionReason(reason)
        )
