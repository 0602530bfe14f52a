"""Imports every module that declares actors or periodic jobs, so a process has them all."""

import koomsg.worker.jobs.billing
import koomsg.worker.jobs.delivery
import koomsg.worker.jobs.domains
import koomsg.worker.jobs.imports
import koomsg.worker.jobs.stats
import koomsg.worker.jobs.tasks  # noqa: F401
