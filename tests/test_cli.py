"""The ``koomsg`` command as a user runs it: real subprocesses, real ports."""

from __future__ import annotations

from pathlib import Path

import pytest

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
