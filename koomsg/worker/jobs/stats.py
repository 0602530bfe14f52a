"""Statistics' periodic jobs: thin wrappers over core/stats/rollup.py."""

from __future__ import annotations

from datetime import timedelta

from koomsg.core.clock import utcnow
from koomsg.core.stats.rollup import purge, rollup
from koomsg.runtime import Runtime
from koomsg.worker.periodic import periodic

# Chunks keep each purge transaction short; a pass stops after this many so it
# cannot hold the job loop for long after a retention change.
PURGE_CHUNK = 5000
PURGE_CHUNKS_PER_PASS = 40


async def rollup_once(runtime: Runtime) -> int:
    skew = timedelta(seconds=runtime.settings.stats_rollup_skew_seconds)
    async with runtime.db.transaction() as session:
        return await rollup(session, skew=skew)


async def purge_once(runtime: Runtime) -> tuple[int, int]:
    before = utcnow() - timedelta(days=runtime.settings.stats_retention_days)
    stats = messages = 0
    for _ in range(PURGE_CHUNKS_PER_PASS):
        async with runtime.db.transaction() as session:
            deleted_stats, deleted_messages = await purge(session, before=before, chunk=PURGE_CHUNK)
        stats += deleted_stats
        messages += deleted_messages
        if deleted_messages < PURGE_CHUNK:
            break
    return stats, messages


@periodic("stats-rollup", lambda settings: settings.stats_rollup_interval_seconds)
async def stats_rollup(runtime: Runtime) -> None:
    await rollup_once(runtime)


@periodic("stats-purge", lambda settings: 3600.0)
async def stats_purge(runtime: Runtime) -> None:
    await purge_once(runtime)
