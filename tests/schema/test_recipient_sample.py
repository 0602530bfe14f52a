"""recipientSampleFile: a signed, expiring link to an .xlsx the importer accepts."""

from __future__ import annotations

import io
import time
from pathlib import Path

from python_calamine import CalamineWorkbook

from koomsg.core.crypto import sign_token
from koomsg.core.recipients import importer
from koomsg.testing.plugin import TEST_SECRET, Api, EnterpriseHandle

CREATE = """
mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { id } }
"""
SAMPLE = "query($id: ID!) { recipientSampleFile(templateId: $id) }"


async def test_sample_file_has_email_and_params_and_is_importable(
    api: Api, enterprise: EnterpriseHandle, tmp_path: Path
) -> None:
    created = await api(
        CREATE,
        {
            "input": {
                "name": "welcome",
                "bodyType": "PLAIN_TEXT",
                "body": "Hi {{name}}, code {{code}}",
            }
        },
    )
    template_id = created.ok()["createTemplate"]["id"]
    url = (await api(SAMPLE, {"id": template_id})).ok()["recipientSampleFile"]
    assert url.startswith("http://127.0.0.1:8000/files/recipient-sample/")

    response = await api.client.get(url.removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    rows = (
        CalamineWorkbook.from_filelike(io.BytesIO(response.content))
        .get_sheet_by_index(0)
        .to_python()
    )
    assert rows[0] == ["email", "name", "code"] and len(rows) == 2
    path = tmp_path / "sample.xlsx"
    path.write_bytes(response.content)
    header = await importer.inspect_file(path, kind="xlsx", params=["name", "code"])
    assert header.params == {"name": 1, "code": 2}


async def test_other_tenants_template_is_not_found(api: Api, enterprise: EnterpriseHandle) -> None:
    (await api(SAMPLE, {"id": "tpl_01JQ0000000000000000000000"})).error("NOT_FOUND")


async def test_forged_and_expired_links_are_refused(api: Api) -> None:
    assert (await api.client.get("/files/recipient-sample/abc.def")).status_code == 404
    expired = sign_token(
        TEST_SECRET, "recipient-sample", {"params": [], "exp": int(time.time()) - 5}
    )
    assert (await api.client.get(f"/files/recipient-sample/{expired}")).status_code == 410
