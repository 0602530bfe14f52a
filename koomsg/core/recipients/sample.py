"""The sample recipient file a user downloads, fills in and uploads."""

from __future__ import annotations

import io
from collections.abc import Sequence

import xlsxwriter

from koomsg.core.crypto import SecretKeys, sign_token, verify_token

PURPOSE = "recipient-sample"
TTL_SECONDS = 600


def sample_workbook(params: Sequence[str]) -> bytes:
    """An .xlsx whose header is ``email`` plus each parameter, with one example row."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("recipients")
    bold = book.add_format({"bold": True})
    # Text format: codes such as 00123 must not lose their zeros when typed in.
    text = book.add_format({"num_format": "@"})
    header = ["email", *params]
    sheet.write_row(0, 0, header, bold)
    sheet.write_row(1, 0, ["someone@example.com", *(f"{name} value" for name in params)], text)
    sheet.set_column(0, len(header) - 1, 24, text)
    book.close()
    return buffer.getvalue()


def sample_url(
    *, keys: SecretKeys, public_url: str, template_id: str, params: Sequence[str]
) -> str:
    token = sign_token(
        keys, PURPOSE, {"t": template_id, "params": list(params)}, ttl_seconds=TTL_SECONDS
    )
    return f"{public_url.rstrip('/')}/files/recipient-sample/{token}"


def sample_params(*, keys: SecretKeys, token: str) -> list[str]:
    """The parameters a download token was made for; BadToken if forged or expired."""
    body = verify_token(keys, PURPOSE, token)
    return [str(name) for name in body.get("params", [])]
