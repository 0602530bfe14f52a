"""Run the real ``koomsg`` command in tests: one-shot commands and a ``koomsg serve`` process.

Subprocesses with a clean environment (no inherited ``KOOMSG_*`` variables),
on a free loopback port; the server's output is kept in a log file beside
the data dir so a test can read what it logged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

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
    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [*KOOMSG, "serve", "--port", str(self.port), *args],
            env=koomsg_env(data_dir, **env),
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

    def graphql(self, query: str, key: str, variables: dict[str, Any] | None = None) -> Any:
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
