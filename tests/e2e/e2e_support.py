"""Plain helpers of the end-to-end tests (fixtures are in conftest.py): ``koomsg``
subprocesses, their environment, bounded waits.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from koomsg.testing.plugin import TEST_SECRET

KOOMSG = [sys.executable, "-m", "koomsg.cli"]
PG_ADMIN_URL = os.environ.get("KOOMSG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def koomsg_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a koomsg subprocess: none of the caller's KOOMSG_* leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOOMSG_")}
    env.update(
        {"KOOMSG_DATA_DIR": str(data_dir), "KOOMSG_SECRET_KEY": TEST_SECRET, **extra},
    )
    return env


def run_koomsg(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A short ``koomsg`` command (e.g. ``operator create-key``), to completion."""
    return subprocess.run(KOOMSG + args, env=env, capture_output=True, text=True, timeout=60)


class KoomsgProcess:
    """One ``koomsg`` subprocess with its output in a log file (read it when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._log_handle = log.open("w")
        self.process = subprocess.Popen(
            [*KOOMSG, *args], env=env, stdout=self._log_handle, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    async def wait_for_output(self, text: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while text not in self.output():
            if not self.alive():
                raise AssertionError(f"koomsg {self.args} exited early:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from koomsg {self.args}:\n{self.tail()}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the child."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log_handle.close()

    def terminate(self, timeout: float = 30) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log_handle.close()


async def wait_until(
    condition: Callable[[], Any], *, within: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; bounded."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or condition}")
        await asyncio.sleep(interval)


async def pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def started_task(runtime: Any, enterprise_name: str, count: int) -> tuple[str, set[str]]:
    """A started task of ``count`` recipients made through the API: (task id, message ids).

    The crash tests share it: they kill processes in the middle of exactly this task.
    """
    import httpx
    from sqlalchemy import select

    from koomsg.core.delivery.models import Message
    from koomsg.core.iam.keys import issue_key
    from koomsg.core.principal import PrincipalKind
    from koomsg.testing.delivery import make_task
    from koomsg.testing.plugin import Api, new_enterprise, sendable_setup
    from koomsg.web.app import create_app

    async with runtime.db.transaction() as session:
        _, operator = await issue_key(session, kind=PrincipalKind.OPERATOR, name="crash")
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        api = Api(client=client, keys={"operator": operator})
        enterprise = await new_enterprise(api, enterprise_name)
        api.key = enterprise.key
        setup = await sendable_setup(api, runtime)
    recipients = [f"r{i:04d}@example.net" for i in range(count)]
    task = await make_task(runtime, setup, enterprise.id, recipients)
    async with runtime.db.session() as session:
        ids = await session.execute(select(Message.id).where(Message.task_id == task.id))
        return task.id, set(ids.scalars().all())


async def enterprise_and_operator(database_url: str, setup_dir: Path) -> tuple[str, str, str]:
    """An enabled enterprise made in-process: (enterprise id, root key, operator key)."""
    import httpx

    from koomsg.core.iam.keys import issue_key
    from koomsg.core.principal import PrincipalKind
    from koomsg.runtime import Runtime
    from koomsg.testing.plugin import Api, make_test_settings, new_enterprise
    from koomsg.web.app import create_app

    runtime = Runtime.build(make_test_settings(database_url, setup_dir))
    try:
        async with runtime.db.transaction() as session:
            _, operator = await issue_key(session, kind=PrincipalKind.OPERATOR, name="e2e")
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://setup") as client:
            made = await new_enterprise(Api(client=client, keys={"operator": operator}), "Twin")
        return made.id, made.key, operator
    finally:
        await runtime.close()


async def serve_and_wait(spawn: Callable[..., KoomsgProcess], env: dict[str, str]) -> str:
    """``koomsg serve`` on a free loopback port, once it answers /healthz: its base URL."""
    import httpx

    port = free_port()
    process = spawn(["serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        if not process.alive():
            raise AssertionError(f"koomsg serve exited:\n{process.tail()}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/healthz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(healthy, within=60, what="koomsg serve to answer /healthz")
    return url
