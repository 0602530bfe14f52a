"""The ``koomsg`` command as a user runs it: real subprocesses, real ports."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from koomsg.testing.plugin import Api, EnterpriseHandle
from koomsg.testing.serve import Server, free_port, key_from, koomsg_env, run

pytestmark = pytest.mark.slow


def test_serve_survives_sigterm_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    server = Server(data_dir, "--demo")
    output = server.output()
    assert f"http://127.0.0.1:{server.port}/graphql" in output
    root_key = key_from(output, "root key")
    operator_key = key_from(output, "operator key")
    me = server.graphql("{ me { kind enterprise { name } } }", root_key)
    assert me["data"]["me"] == {
        "kind": "ENTERPRISE_ROOT",
        "enterprise": {"name": "Demo Enterprise"},
    }
    assert server.graphql(
        "mutation { enableService(acceptTerms: true) { serviceEnabled } }", root_key
    )["data"]
    created = server.graphql('mutation { createIamUser(name: "kept") { id } }', root_key)
    user_id = created["data"]["createIamUser"]["id"]
    assert server.terminate() == 0

    again = Server(data_dir)
    try:
        users = again.graphql("{ iamUsers { id name } }", root_key)
        assert users["data"]["iamUsers"] == [{"id": user_id, "name": "kept"}]
        enterprises = again.graphql("{ enterprises { name serviceEnabled } }", operator_key)
        assert enterprises["data"]["enterprises"] == [
            {"name": "Demo Enterprise", "serviceEnabled": True}
        ]
    finally:
        assert again.terminate() == 0


def test_operator_create_key_prints_the_secret_last(tmp_path: Path) -> None:
    env = koomsg_env(tmp_path / "var")
    result = run(["operator", "create-key", "--name", "ops"], env)
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("key_") and "." in secret
    server = Server(tmp_path / "var")
    try:
        assert server.graphql("{ me { kind name } }", secret)["data"]["me"] == {
            "kind": "OPERATOR",
            "name": "ops",
        }
    finally:
        server.terminate()


def test_db_upgrade(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], koomsg_env(tmp_path / "var"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "koomsg.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("KOOMSG_TRANSPORT", "pigeon", "unknown transport 'pigeon'"),
        ("KOOMSG_BROKER_URL", "kafka://x", "cannot parse"),
        ("KOOMSG_PLUGINS", "koomsg_no_such_plugin", "koomsg_no_such_plugin"),
    ],
)
def test_bad_configuration_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    result = run(
        ["serve", "--port", str(free_port())], koomsg_env(tmp_path / "var", **{variable: value})
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("koomsg:")]
    assert len(lines) == 1 and words in lines[0]
    if variable != "KOOMSG_PLUGINS":
        assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    result = run(["worker"], koomsg_env(tmp_path / "var"))
    assert result.returncode == 2
    assert "KOOMSG_BROKER_URL" in result.stderr


# ---------------------------------------------------------------- access keys


def test_demo_reuses_its_keys_until_they_stop_working(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = Server(data_dir, "--demo")
    keys = (key_from(first.output(), "operator key"), key_from(first.output(), "root key"))
    assert first.terminate() == 0
    stored = data_dir / "demo_keys"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    again = Server(data_dir, "--demo")
    try:
        assert (
            key_from(again.output(), "operator key"),
            key_from(again.output(), "root key"),
        ) == keys
        assert "reused from" in again.output()
    finally:
        assert again.terminate() == 0
    # The database is wiped: the stored keys authenticate no more, so new ones are made.
    for wiped in data_dir.glob("koomsg.db*"):
        wiped.unlink()
    fresh = Server(data_dir, "--demo")
    try:
        operator, root = (
            key_from(fresh.output(), "operator key"),
            key_from(fresh.output(), "root key"),
        )
        assert operator not in keys and root not in keys
        assert fresh.graphql("{ me { kind } }", root)["data"]["me"] == {"kind": "ENTERPRISE_ROOT"}
        assert fresh.graphql("{ me { kind } }", operator)["data"]["me"] == {"kind": "OPERATOR"}
        assert root in stored.read_text() and stat.S_IMODE(stored.stat().st_mode) == 0o600
    finally:
        assert fresh.terminate() == 0


async def test_operator_lists_and_revokes_keys(
    api: Api, enterprise: EnterpriseHandle, koomsg_database_url: str, tmp_path: Path
) -> None:
    env = koomsg_env(tmp_path / "var", KOOMSG_DATABASE_URL=koomsg_database_url)
    user = (await api('mutation { createIamUser(name: "alice") { id } }')).ok()["createIamUser"]
    secret = (
        await api("mutation($u: ID!) { createAccessKey(userId: $u) { secret } }", {"u": user["id"]})
    ).ok()["createAccessKey"]["secret"]
    key_id = secret.split(".")[0]

    async def koomsg(*args: str) -> Any:
        return await asyncio.to_thread(run, list(args), env)

    listed = await koomsg("operator", "list-keys")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("KEY ID")
    for known in (key_id, enterprise.key.split(".")[0], api.keys["operator"].split(".")[0]):
        assert known in listed.stdout
    assert secret.split(".")[1] not in listed.stdout
    only = await koomsg("operator", "list-keys", "--enterprise", enterprise.id)
    assert key_id in only.stdout and api.keys["operator"].split(".")[0] not in only.stdout

    revoked = await koomsg("operator", "revoke-key", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert f"key {key_id} (IAM_USER 'alice') revoked" in revoked.stdout
    # The API process refuses it on its next request.
    (await api("{ me { name } }", key=secret)).error("UNAUTHENTICATED")
    twice = await koomsg("operator", "revoke-key", key_id)
    assert twice.returncode == 0 and "already revoked" in twice.stdout
    active = await koomsg("operator", "list-keys", "--active")
    assert key_id not in active.stdout and enterprise.key.split(".")[0] in active.stdout
    unknown = await koomsg("operator", "revoke-key", "key_nosuchkey")
    assert unknown.returncode == 1 and "no such access key" in unknown.stderr


async def _pg_admin(statement: str) -> None:
    import asyncpg

    admin = os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind that only this test uses."""
    if os.environ.get("KOOMSG_TEST_DATABASE", "sqlite") != "postgresql":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    name = f"koomsg_scratch_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    admin = os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_revoked_key_is_refused_by_another_process(
    tmp_path: Path, scratch_database_url: str
) -> None:
    env = {"KOOMSG_DATABASE_URL": scratch_database_url}
    assert run(["db", "upgrade"], koomsg_env(tmp_path / "cli", **env)).returncode == 0
    made = run(["operator", "create-key", "--name", "ops"], koomsg_env(tmp_path / "cli", **env))
    operator = made.stdout.strip().splitlines()[-1]
    one, two = Server(tmp_path / "one", **env), Server(tmp_path / "two", **env)
    try:
        enterprise = one.graphql(
            'mutation { createEnterprise(input: {name: "Acme", realNameVerified: true, '
            "industryClass: NON_SENSITIVE}) { id } }",
            operator,
        )["data"]["createEnterprise"]
        root = one.graphql(
            "mutation($id: ID!) { createEnterpriseRootKey(enterpriseId: $id) { secret } }",
            operator,
            {"id": enterprise["id"]},
        )["data"]["createEnterpriseRootKey"]["secret"]
        one.graphql("mutation { enableService(acceptTerms: true) { id } }", root)
        user = one.graphql('mutation { createIamUser(name: "bob") { id } }', root)["data"]
        made_key = one.graphql(
            "mutation($u: ID!) { createAccessKey(userId: $u) { keyId secret } }",
            root,
            {"u": user["createIamUser"]["id"]},
        )["data"]["createAccessKey"]
        secret = made_key["secret"]
        assert two.graphql("{ me { name } }", secret)["data"]["me"] == {"name": "bob"}
        revoked = one.graphql(
            "mutation($id: ID!) { revokeAccessKey(id: $id) { revokedAt } }",
            root,
            {"id": made_key["keyId"]},
        )
        assert revoked["data"]["revokeAccessKey"]["revokedAt"]
        refused = two.graphql("{ me { name } }", secret)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # Only that key: the root key still works there.
        assert two.graphql("{ me { kind } }", root)["data"]["me"] == {"kind": "ENTERPRISE_ROOT"}
    finally:
        assert one.terminate() == 0
        assert two.terminate() == 0


def test_secrets_rotate_runs_on_a_fresh_database(tmp_path: Path) -> None:
    env = koomsg_env(tmp_path / "var")
    result = run(["secrets", "rotate"], env)
    assert result.returncode == 0, result.stderr
    assert "re-encrypted" in result.stdout
