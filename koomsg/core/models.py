"""Imports every area's tables so ``SQLModel.metadata`` is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from koomsg.core.addresses import models as addresses_models  # noqa: F401
from koomsg.core.billing import models as billing_models  # noqa: F401
from koomsg.core.delivery import models as delivery_models  # noqa: F401
from koomsg.core.domains import models as domains_models  # noqa: F401
from koomsg.core.iam import models as iam_models  # noqa: F401
from koomsg.core.ratelimits import models as ratelimits_models  # noqa: F401
from koomsg.core.recipients import models as recipients_models  # noqa: F401
from koomsg.core.stats import models as stats_models  # noqa: F401
from koomsg.core.tasks import models as tasks_models  # noqa: F401
from koomsg.core.templates import models as templates_models  # noqa: F401
from koomsg.core.tenancy import models as tenancy_models  # noqa: F401

metadata = SQLModel.metadata
