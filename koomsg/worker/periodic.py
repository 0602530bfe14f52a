"""The periodic-job registry: what runs every few seconds beside the actors.

Job modules (``koomsg.worker.jobs.*``) register here with ``@periodic``; the
process services (``koomsg.worker.services``) run what is registered. The
registry lives in its own module so that neither side imports the other.
Every job must be safe to run in several processes at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from koomsg.config import Settings
from koomsg.runtime import Runtime

JobBody = Callable[[Runtime], Awaitable[Any]]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval: Callable[[Settings], float]
    run: JobBody


PERIODIC_JOBS: list[PeriodicJob] = []


def periodic(name: str, interval: Callable[[Settings], float]) -> Callable[[JobBody], JobBody]:
    """Register ``fn`` to run every ``interval(settings)`` seconds in each worker process."""

    def register(fn: JobBody) -> JobBody:
        PERIODIC_JOBS.append(PeriodicJob(name, interval, fn))
        return fn

    return register
