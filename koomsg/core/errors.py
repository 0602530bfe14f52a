"""The one tree of errors core raises; ``schema/errors.py`` maps them to GraphQL.

Each class has a stable ``code`` (the contract's ``extensions.code``) and may
name the offending input ``field``.
"""

from __future__ import annotations


class KoomsgError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(KoomsgError):
    code = "UNAUTHENTICATED"


class Forbidden(KoomsgError):
    code = "FORBIDDEN"


class NotFound(KoomsgError):
    code = "NOT_FOUND"


class BadInput(KoomsgError):
    code = "BAD_USER_INPUT"

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field=field)


class Conflict(KoomsgError):
    code = "CONFLICT"


class QuotaExceeded(KoomsgError):
    code = "QUOTA_EXCEEDED"


class ServiceNotEnabled(KoomsgError):
    code = "SERVICE_NOT_ENABLED"


class PreconditionFailed(KoomsgError):
    code = "PRECONDITION_FAILED"
