"""The recipient importer's actor and sweeper: thin wrappers over core/recipients/importer.py."""

from __future__ import annotations

from koomsg.core.clock import utcnow
from koomsg.core.recipients.importer import expired_imports, run_import
from koomsg.runtime import Runtime
from koomsg.worker.actors import koomsg_actor, worker_runtime
from koomsg.worker.periodic import periodic


# Time limit above the sandbox's wall clock (300 s): the child is the slow part.
@koomsg_actor(queue_name="koomsg-import", max_retries=3, min_backoff=2000, time_limit=600_000)
async def import_task_recipients(task_id: str) -> None:
    await run_import(worker_runtime(), task_id=task_id)


def enqueue_import(task_id: str) -> None:
    """The runtime's ``enqueue_import`` seam (``ProcessServices.attach`` sets it)."""
    import_task_recipients.send(task_id)  # type: ignore[attr-defined]


@periodic("recipient-import-sweeper", lambda s: 5.0)
async def sweep_imports(runtime: Runtime) -> None:
    # Re-requesting is safe: run_import claims the task, a second request finds it taken.
    for task_id in await expired_imports(runtime.db, now=utcnow()):
        enqueue_import(task_id)
