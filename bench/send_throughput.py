"""End-to-end sending throughput: a templated, DKIM-signed task into postfix's smtp-sink.

A task of ``--count`` recipients (a rich-text template with two parameters,
signed with a real RSA-2048 DKIM key, one link instrumented for clicks) is
written in bulk, then timed from ``start_task`` until the task is COMPLETED,
delivered by the ``smtp`` transport to ``smtp-sink`` on loopback. Modes:

- ``embedded``: a ``koomsg serve`` process with no broker URL (SQLite under a
  temporary data dir, dramatiq's in-process broker, worker threads and the
  dispatcher inside it), as a default installation runs;
- ``postgres-redis``: a scratch PostgreSQL database and a Redis broker, with
  two ``koomsg worker`` processes (each running the dispatcher and sweeper too).

For scale, ``smtp-source`` (postfix's C load generator) then sends the same
number of messages of the same size to the same sink. Prints messages/s, the
peak RSS of every process involved and the ratio to smtp-source; asserts
nothing. ``--profile`` runs the embedded pipeline in this process under
cProfile instead (smaller count) and prints where the time goes.

Needs ``/usr/sbin/smtp-sink`` and ``/usr/sbin/smtp-source`` (``make bench-deps``
installs the postfix package; the postfix daemon is never started).

Run: ``.venv/bin/python bench/send_throughput.py [--count N] [--mode embedded|postgres-redis|both]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from sqlalchemy import func, select, update

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
SECRET = "bench-secret-key-0123456789abcdef"
KOOMSG = str(Path(sys.executable).with_name("koomsg"))
BODY = (
    "<h1>Spring news for {{name}}</h1>"
    + "<p>Dear {{name}}, our spring collection has arrived: light jackets, linen shirts and "
    "sandals for the warmer days ahead. Members save 20% this week.</p>"
    * 4
    + '<p>Your personal code is <b>{{code}}</b>. <a href="https://shop.example/spring?src=mail">'
    "Browse the collection</a> or reply to this message with any question.</p>"
    "<p>Kind regards,<br>The Bench Shop team</p>"
)
SUBJECT = "Spring news for {{name}}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ the sink
class Sink:
    """smtp-sink in the background; ``delivered`` reads its running message counter."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "smtp-sink.out"
        # Root must name an unprivileged user; -c keeps running counters on stdout.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [SINK, "-c", *user, f"127.0.0.1:{self.port}", "1000"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    @property
    def delivered(self) -> int:
        found = re.findall(rb"mesg=(\d+)", self.log.read_bytes()[-4096:])
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def smtp_source(port: int, count: int, size: int, sessions: int) -> float:
    """Seconds smtp-source takes to push ``count`` messages of ``size`` bytes, connections reused."""
    began = time.perf_counter()
    subprocess.run(
        [
            SOURCE,
            "-d",
            "-l",
            str(size),
            "-m",
            str(count),
            "-s",
            str(sessions),
            "-f",
            "bench@bench.example",
            "-t",
            "someone@example.org",
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class Prepared:
    task_id: str
    message_size: int


def bench_env(
    database_url: str, data_dir: Path, sink_port: int, broker: str | None
) -> dict[str, str]:
    # Tunables given to the bench (KOOMSG_BATCH_SIZE=...) reach every process.
    env = {k: v for k, v in os.environ.items() if k.startswith("KOOMSG_")}
    env |= {
        "KOOMSG_DATA_DIR": str(data_dir),
        "KOOMSG_DATABASE_URL": database_url,
        "KOOMSG_SECRET_KEY": SECRET,
        "KOOMSG_PUBLIC_URL": "https://links.bench.example",
        "KOOMSG_TRANSPORT": "smtp",
        "KOOMSG_SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
    }
    if broker:
        env["KOOMSG_BROKER_URL"] = broker
    return env


async def prepare(env: dict[str, str], count: int) -> Prepared:
    """Enterprise, verified domain with a real DKIM key, address, template, and the task's rows."""
    from koomsg.config import load_settings
    from koomsg.core.addresses.service import create_address
    from koomsg.core.clock import utcnow
    from koomsg.core.delivery.build import build_envelope
    from koomsg.core.delivery.content import build_content
    from koomsg.core.delivery.models import Message
    from koomsg.core.domains.models import DomainStatus, SenderDomain
    from koomsg.core.domains.service import create_domain
    from koomsg.core.principal import Principal, PrincipalKind
    from koomsg.core.recipients.writer import write_messages
    from koomsg.core.tasks.models import SendingTask, SendingType, TaskStatus
    from koomsg.core.templates.models import BodyType
    from koomsg.core.templates.service import create_template
    from koomsg.core.tenancy.models import Enterprise
    from koomsg.migrations import upgrade
    from koomsg.runtime import Runtime

    settings = load_settings(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.database_url)
    runtime = Runtime.build(settings)
    now = utcnow()
    try:
        async with runtime.db.transaction() as session:
            enterprise = Enterprise(name="Bench", real_name_verified=True, service_enabled=True)
            session.add(enterprise)
            await session.flush()
            principal = Principal(
                PrincipalKind.ENTERPRISE_ROOT, "bench", "key", enterprise_id=enterprise.id
            )
            domain = await create_domain(
                session, principal=principal, settings=settings, name="bench.example"
            )
            # Real verification needs DNS; the periodic re-check must not run during the bench.
            await session.execute(
                update(SenderDomain)
                .where(SenderDomain.id == domain.id)  # type: ignore[arg-type]
                .values(
                    status=DomainStatus.VERIFICATION_PASSED,
                    next_check_at=now + timedelta(days=1),
                )
            )
            address = await create_address(
                session, principal=principal, domain_id=domain.id, prefix="news", alias="Bench Shop"
            )
            template = await create_template(
                session,
                principal=principal,
                plugins=runtime.plugins,
                name="Spring",
                body_type=BodyType.RICH_TEXT,
                body=BODY,
                support_unsubscribe=True,
            )
            task = SendingTask(
                enterprise_id=enterprise.id,
                name="throughput",
                subject=SUBJECT,
                template_id=template.id,
                template_name=template.name,
                body_type=template.body_type,
                body=template.body,
                params=list(template.params),
                support_unsubscribe=True,
                sender_address_id=address.id,
                sender_domain_id=domain.id,
                sender_address=f"news@{domain.name}",
                sender_alias="Bench Shop",
                sending_type=SendingType.NOW,
                # Not due for the scheduler (no scheduled_at); start_task starts the clock.
                status=TaskStatus.SCHEDULED,
            )
            session.add(task)
            await session.flush()
            task_id = task.id
        recipients = [
            (f"user{i}@example.org", {"name": f"User {i}", "code": f"C{i:08d}"})
            for i in range(count)
        ]
        for start in range(0, count, 20_000):
            async with runtime.db.transaction() as session:
                stored = await session.get(SendingTask, task_id)
                assert stored is not None
                await write_messages(
                    session, task=stored, recipients=recipients[start : start + 20_000], now=now
                )
        async with runtime.db.session() as session:
            sample = (
                (await session.execute(select(Message).where(Message.task_id == task_id).limit(1)))
                .scalars()
                .one()
            )
            content = await build_content(session, settings=settings, message=sample)
        size = len(build_envelope(settings, content, sample).data)
    finally:
        await runtime.close()
    return Prepared(task_id, size)


async def start_and_wait(env: dict[str, str], task_id: str, watch: list[int]) -> tuple[float, int]:
    """Start the task, wait until it is COMPLETED; returns (seconds, DELIVERED rows)."""
    from koomsg.config import load_settings
    from koomsg.core.clock import utcnow
    from koomsg.core.db import Database
    from koomsg.core.delivery.models import Message, MessageStatus
    from koomsg.core.delivery.service import start_task
    from koomsg.core.tasks.models import SendingTask, TaskStatus

    db = Database(load_settings(env).database_url)
    try:
        began = time.perf_counter()
        async with db.transaction() as session:
            task = await session.get(SendingTask, task_id)
            assert task is not None
            await start_task(session, task=task, now=utcnow())
        while True:
            await asyncio.sleep(0.05)
            async with db.session() as session:
                status = (
                    await session.execute(
                        select(SendingTask.status).where(SendingTask.id == task_id)  # type: ignore[arg-type]
                    )
                ).scalar_one()
            if status == TaskStatus.COMPLETED:
                break
            for pid in watch:
                if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie":
                    raise RuntimeError(f"process {pid} died during the bench")
        elapsed = time.perf_counter() - began
        async with db.session() as session:
            delivered = (
                await session.execute(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.task_id == task_id, Message.status == MessageStatus.DELIVERED)  # type: ignore[arg-type]
                )
            ).scalar_one()
    finally:
        await db.dispose()
    return elapsed, int(delivered)


# ------------------------------------------------------------------ processes
def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set of a live process, in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def processes(
    commands: list[list[str]], env: dict[str, str], ready: str, folder: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start koomsg processes, wait until each logged ``ready``, stop them (SIGTERM) afterwards."""
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("KOOMSG_")}, **env}
    started: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for index, command in enumerate(commands):
            log = folder / f"process{index}.log"
            logs.append(log)
            started.append(
                subprocess.Popen(
                    command, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT
                )
            )
        deadline = time.monotonic() + 60
        for process, log in zip(started, logs, strict=True):
            while ready not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{' '.join(process.args)} did not start:\n{log.read_text()}"
                    )  # type: ignore[arg-type]
                time.sleep(0.1)
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ------------------------------------------------------------------ modes
@dataclass
class Result:
    label: str
    count: int
    seconds: float
    delivered_rows: int
    sink_received: int
    message_size: int
    rss: dict[str, float]


def report(result: Result, sink: Sink, sessions: int) -> None:
    rate = result.count / result.seconds
    source = smtp_source(sink.port, result.count, result.message_size, sessions)
    source_rate = result.count / source
    label = f"[{result.label}]"
    print(f"{label} {result.count} messages of {result.message_size} bytes, DKIM-signed")
    print(f"{label} task start -> COMPLETED: {result.seconds:8.2f} s  {rate:8.0f} messages/s")
    print(
        f"{label} DELIVERED rows: {result.delivered_rows}; received by smtp-sink: "
        f"{result.sink_received}"
    )
    for name, mb in result.rss.items():
        print(f"{label} peak RSS {name}: {mb:7.1f} MiB")
    print(
        f"{label} smtp-source, same count and size, {sessions} reused sessions: "
        f"{source:6.2f} s  {source_rate:8.0f} messages/s"
    )
    print(f"{label} ratio koomsg / smtp-source: {rate / source_rate:.2f}")
    sys.stdout.flush()


def run_embedded(count: int, sink: Sink, folder: Path) -> Result:
    data_dir = folder / "embedded"
    env = bench_env(f"sqlite+aiosqlite:///{data_dir / 'koomsg.db'}", data_dir, sink.port, None)
    prepared = asyncio.run(prepare(env, count))
    before = sink.delivered
    command = [KOOMSG, "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    with processes([command], env, "Application startup complete", folder) as started:
        seconds, delivered = asyncio.run(
            start_and_wait(env, prepared.task_id, [p.pid for p in started])
        )
        rss = {"koomsg serve": peak_rss_mb(started[0].pid)}
        rss.update(_children_rss(started[0].pid))
    time.sleep(0.2)
    rss["bench driver (prepares data, polls)"] = self_peak_rss_mb()
    return Result(
        "embedded: SQLite, in-process broker, koomsg serve",
        count,
        seconds,
        delivered,
        sink.delivered - before,
        prepared.message_size,
        rss,
    )


async def _pg(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run_postgres_redis(
    count: int, sink: Sink, folder: Path, admin: str, redis_url: str, workers: int
) -> Result:
    import redis

    admin = admin.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"koomsg_bench_{secrets.token_hex(4)}"
    asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
    try:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        env = bench_env(f"{base}/{name}", folder / "postgres", sink.port, redis_url)
        prepared = asyncio.run(prepare(env, count))
        before = sink.delivered
        commands = [[KOOMSG, "worker"] for _ in range(workers)]
        with processes(commands, env, "koomsg worker running", folder) as started:
            seconds, delivered = asyncio.run(
                start_and_wait(env, prepared.task_id, [p.pid for p in started])
            )
            rss = {}
            for index, process in enumerate(started):
                rss[f"koomsg worker {index + 1}"] = peak_rss_mb(process.pid)
                rss.update(_children_rss(process.pid))
            rss.update(_server_rss())
        time.sleep(0.2)
        rss["bench driver (prepares data, polls)"] = self_peak_rss_mb()
    finally:
        asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return Result(
        f"postgres-redis: PostgreSQL, Redis, {workers} koomsg worker processes",
        count,
        seconds,
        delivered,
        sink.delivered - before,
        prepared.message_size,
        rss,
    )


def _children_rss(pid: int) -> dict[str, float]:
    """Peak RSS of a koomsg process's helpers (the message build process, say)."""
    return {
        f"  its helper process {child.pid}": peak_rss_mb(child.pid)
        for child in psutil.Process(pid).children(recursive=True)
    }


def _server_rss() -> dict[str, float]:
    """Current RSS of the database and broker servers (their peaks are not ours to read;
    PostgreSQL's shared buffers count in every backend's RSS, so the largest, not the sum)."""
    totals: dict[str, float] = {}
    for process in psutil.process_iter(["name", "memory_info"]):
        name = process.info["name"] or ""
        key = "largest postgres process (now)" if name.startswith("postgres") else None
        key = "redis-server (now)" if name.startswith("redis-server") else key
        if key and process.info["memory_info"] is not None:
            totals[key] = max(totals.get(key, 0.0), process.info["memory_info"].rss / 2**20)
    return totals


# ------------------------------------------------------------------ profile
async def _profiled(env: dict[str, str], task_id: str) -> tuple[float, pstats.Stats]:
    """The embedded default in this process (ProcessServices, as ``koomsg serve`` runs it,
    without HTTP), with a profiler in the main thread (dispatcher, sweeper) and one in
    dramatiq's event loop thread (every batch runs there)."""
    from dramatiq.asyncio import get_event_loop_thread

    from koomsg.config import load_settings
    from koomsg.runtime import Runtime
    from koomsg.worker.services import ProcessServices

    settings = load_settings(env)
    services = ProcessServices(settings, embedded_worker=True)
    runtime = Runtime.build(settings, broker=services.broker)
    services.attach(runtime)
    await services.start()
    worker_loop = get_event_loop_thread()
    assert worker_loop is not None
    main_profile, loop_profile = cProfile.Profile(), cProfile.Profile()

    async def toggle(on: bool) -> None:
        loop_profile.enable() if on else loop_profile.disable()

    try:
        asyncio.run_coroutine_threadsafe(toggle(True), worker_loop.loop).result()
        main_profile.enable()
        seconds, _ = await start_and_wait(env, task_id, [])
        main_profile.disable()
        asyncio.run_coroutine_threadsafe(toggle(False), worker_loop.loop).result()
    finally:
        await services.stop()
        await runtime.close()
    stats = pstats.Stats(main_profile)
    stats.add(loop_profile)
    return seconds, stats


def run_profile(count: int, sink: Sink, folder: Path, top: int) -> None:
    data_dir = folder / "profile"
    env = bench_env(f"sqlite+aiosqlite:///{data_dir / 'koomsg.db'}", data_dir, sink.port, None)
    prepared = asyncio.run(prepare(env, count))
    os.environ.update(env)
    seconds, stats = asyncio.run(_profiled(env, prepared.task_id))
    print(
        f"[profile: embedded, in-process, cProfile] {count} messages in {seconds:.2f} s "
        f"({count / seconds:.0f} messages/s under the profiler)"
    )
    for order in ("tottime", "cumulative"):
        buffer = io.StringIO()
        stats.stream = buffer  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(top)
        lines = buffer.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"--- top {top} by {order} (main thread + worker event loop thread)")
        print("\n".join(lines[start:]).rstrip())


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--mode", choices=("embedded", "postgres-redis", "both"), default="both")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workers", type=int, default=2, help="koomsg worker processes")
    parser.add_argument("--sessions", type=int, default=20, help="smtp-source parallel sessions")
    parser.add_argument("--profile", action="store_true", help="profile the embedded pipeline")
    parser.add_argument("--profile-count", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    # sqlmodel nags about session.execute(); the bench uses koomsg's own calls as they are.
    warnings.simplefilter("ignore", DeprecationWarning)
    for binary in (SINK, SOURCE):
        if not Path(binary).exists():
            print(f"{binary} is missing: run `make bench-deps` (installs postfix's tools)")
            raise SystemExit(2)
    folder = Path(tempfile.mkdtemp(prefix="koomsg-bench-"))
    sink = Sink(folder)
    try:
        if args.profile:
            run_profile(args.profile_count, sink, folder, args.top)
            return
        if args.mode in ("embedded", "both"):
            report(run_embedded(args.count, sink, folder), sink, args.sessions)
        if args.mode in ("postgres-redis", "both"):
            result = run_postgres_redis(
                args.count, sink, folder, args.postgres, args.redis, args.workers
            )
            report(result, sink, args.sessions)
    finally:
        sink.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
