"""What runs beside the API in a process: dramatiq worker threads and periodic jobs.

``koomsg serve`` with no broker URL runs both itself (the embedded default);
``koomsg worker`` runs both against Redis or RabbitMQ. Periodic jobs (the
scheduler, sweepers, DNS re-checks) register in ``PERIODIC_JOBS``; each is
safe to run in several processes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import dramatiq
from dramatiq.middleware.asyncio import get_event_loop_thread

from koomsg.config import Settings
from koomsg.core.delivery.sweep import release_dead_predecessors
from koomsg.runtime import Runtime
from koomsg.worker.actors import configure_worker
from koomsg.worker.broker import broker_ping, install_broker, make_broker
from koomsg.worker.notices import RedisRelay
from koomsg.worker.periodic import PERIODIC_JOBS, PeriodicJob

log = logging.getLogger(__name__)


class ProcessServices:
    def __init__(self, settings: Settings, *, embedded_worker: bool, threads: int = 4) -> None:
        self.settings = settings
        self.embedded_worker = embedded_worker
        self.threads = threads
        self.broker = make_broker(settings)
        install_broker(self.broker)
        self.runtime: Runtime | None = None
        self._worker: dramatiq.Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._relay: RedisRelay | None = None

    def attach(self, runtime: Runtime) -> None:
        """Wire ``runtime`` to this process's broker: actors build their runtime from the
        same settings, the API enqueues imports on it, and /readyz pings it."""
        from koomsg.worker.jobs.imports import enqueue_import

        self.runtime = runtime
        configure_worker(self.settings, runtime.plugins, self.broker)
        runtime.enqueue_import = enqueue_import
        runtime.broker_ping = functools.partial(broker_ping, self.broker)

    async def start(self) -> None:
        import koomsg.worker.jobs  # noqa: F401  (registers actors and periodic jobs)

        install_broker(self.broker)
        url = self.settings.broker_url or ""
        if url.startswith(("redis://", "rediss://")):
            # taskProgress streams here hear of other processes' changes.
            self._relay = RedisRelay(url)
            self._relay.start()
        assert self.runtime is not None
        if self.embedded_worker and self.settings.is_embedded_broker:
            # One embedded server per data dir: what its dead predecessor held is free now,
            # not when the lease runs out; so is what its in-memory broker lost. Before the
            # workers start, so nothing of this process is mistaken for it.
            released = await release_dead_predecessors(self.runtime.delivery)
            if released["released"] or released["requeued"]:
                log.info("released what the previous process held: %s", released)
        if self.embedded_worker:
            self._worker = dramatiq.Worker(
                self.broker, worker_threads=self.threads, worker_timeout=100
            )
            self._worker.start()
        for job in PERIODIC_JOBS:
            self._tasks.append(asyncio.create_task(self._loop(job, self.runtime), name=job.name))

    async def _loop(self, job: PeriodicJob, runtime: Runtime) -> None:
        while True:
            try:
                await job.run(runtime)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic job %s failed; it runs again next interval", job.name)
            await asyncio.sleep(job.interval(self.settings))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._relay is not None:
            await asyncio.to_thread(self._relay.stop)
            self._relay = None
        from koomsg.worker.actors import reset_worker_runtime

        if self._worker is not None:
            # The worker runtime's connections belong to dramatiq's event loop: close
            # them there, before that loop stops, or they complain of a closed loop.
            loop_thread = get_event_loop_thread()
            if loop_thread is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(loop_thread.run_coroutine, reset_worker_runtime())
            await asyncio.to_thread(self._worker.stop)
            self._worker = None
        with contextlib.suppress(Exception):
            await reset_worker_runtime()
        if not self.embedded_worker or self.settings.is_embedded_broker:
            return
        with contextlib.suppress(Exception):
            self.broker.close()
