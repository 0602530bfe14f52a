"""The periodic job that starts scheduled sending tasks (see core/tasks/scheduler.py)."""

from __future__ import annotations

from koomsg.core.tasks.scheduler import BATCH, start_due_tasks
from koomsg.runtime import Runtime
from koomsg.worker.periodic import periodic


@periodic("task-scheduler", lambda s: 1.0)
async def start_scheduled_tasks(runtime: Runtime) -> None:
    # A full batch may mean more are due: keep going before sleeping.
    while await start_due_tasks(runtime.db) >= BATCH:
        pass
