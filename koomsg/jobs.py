"""Imports every module that declares actors or periodic jobs, so a process has them all."""

import koomsg.billing_jobs
import koomsg.delivery_jobs
import koomsg.domain_jobs
import koomsg.import_jobs
import koomsg.stats_jobs
import koomsg.task_jobs  # noqa: F401
