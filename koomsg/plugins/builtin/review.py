"""The built-in template approval policy, as the hosted product does it.

Enterprises of a sensitive industry wait for an operator; the rest are
approved at once.
"""

from __future__ import annotations

from koomsg.plugins import hookimpl
from koomsg.plugins.types import EnterpriseInfo, ReviewDecision, ReviewOutcome, TemplateForReview


@hookimpl
def koomsg_review_template(
    template: TemplateForReview, enterprise: EnterpriseInfo
) -> ReviewDecision:
    if enterprise.industry_class == "SENSITIVE":
        return ReviewDecision(
            ReviewOutcome.HOLD, "sensitive industry: an operator reviews every template"
        )
    return ReviewDecision(ReviewOutcome.APPROVE, None)
