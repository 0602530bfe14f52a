"""The download behind ``recipientSampleFile``: a signed, expiring link to an .xlsx."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from koomsg.core.crypto import BadToken
from koomsg.core.recipients.sample import sample_params, sample_workbook

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def recipient_sample(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        params = sample_params(
            keys=runtime.settings.secret_keys, token=request.path_params["token"]
        )
    except BadToken as exc:
        expired = "expired" in str(exc)
        return PlainTextResponse(
            "link expired" if expired else "not found", status_code=410 if expired else 404
        )
    return Response(
        sample_workbook(params),
        media_type=XLSX_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="recipients-sample.xlsx"',
            "Cache-Control": "no-store",
        },
    )
