"""Keep link tokens out of logs: a token in a log line is a working link for whoever reads it.

Open, click, unsubscribe and download URLs carry signed tokens in their path.
``install_token_redaction`` puts a filter on uvicorn's access logger and on
every handler of the root and uvicorn loggers, so such a path is logged with
a short digest (``tok:…``) instead: enough to correlate lines, useless to replay.
"""

from __future__ import annotations

import logging
import re

from koomsg.core.crypto import token_digest

_TOKEN_PATH = re.compile(r"(/(?:t/[oc]|u|files/recipient-sample)/)([A-Za-z0-9_\-.=%]+)")


def redact_tokens(text: str) -> str:
    return _TOKEN_PATH.sub(lambda match: match.group(1) + token_digest(match.group(2)), text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


_FILTER = RedactTokens()


def install_token_redaction() -> None:
    """Idempotent; call after logging is configured (uvicorn configures it on start)."""
    loggers = [
        logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error")
    ]
    for logger in loggers:
        targets: list[logging.Filterer] = [logger, *logger.handlers]
        for target in targets:
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)
