"""Imports every area's tables so ``SQLModel.metadata`` is complete (Alembic, tests)."""

from sqlmodel import SQLModel

from koomsg.core.iam import models as iam_models  # noqa: F401
from koomsg.core.tenancy import models as tenancy_models  # noqa: F401

metadata = SQLModel.metadata
