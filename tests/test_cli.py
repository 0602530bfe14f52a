"""The ``koomsg`` command as a user runs it: real subprocesses, real ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
KOOMSG = [sys.executable, "-m", "koomsg.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def koomsg_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOOMSG_")}
    env.update({"KOOMSG_DATA_DIR": str(data_dir), **extra})
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(KOOMSG + args, env=env, capture_output=True, text=True, timeout=60)


class Server:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [*KOOMSG, "serve", "--port", str(self.port), *args],
            env=koomsg_env(data_dir),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"koomsg serve did not start:\n{self.log.read_text()}")

    def output(self) -> str:
        return self.log.read_text()

    def graphql(self, query: str, key: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        return response.json()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def key_from(output: str, label: str) -> str:
    for line in output.splitlines():
        if label in line:
            return line.split()[-1]
    raise AssertionError(f"no {label!r} in output:\n{output}")


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
