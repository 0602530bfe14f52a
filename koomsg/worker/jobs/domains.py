"""The periodic job that re-verifies sender domains (see core/domains/recheck.py)."""

from __future__ import annotations

from koomsg.core.domains.recheck import recheck_due_domains
from koomsg.runtime import Runtime
from koomsg.worker.periodic import periodic


@periodic("domain-recheck", lambda s: min(s.domain_recheck_seconds, 300))
async def recheck_domains(runtime: Runtime) -> None:
    # Each domain has its own due time; waking every few minutes keeps them near it.
    while await recheck_due_domains(runtime.db, settings=runtime.settings):
        pass
