"""Small recipient files for the importer's tests (as fixtures: tests here are not a package)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter


def xlsx(path: Path, rows: list[list[Any]], *, constant_memory: bool = False) -> Path:
    options = {"constant_memory": constant_memory, "default_date_format": "yyyy-mm-dd"}
    book = xlsxwriter.Workbook(str(path), options)
    sheet = book.add_worksheet("recipients")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.close()
    return path


def zip_bomb(path: Path) -> Path:
    """A valid-looking workbook whose sheet inflates 1000:1."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (50 << 20) + b"/>")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def make_xlsx() -> Any:
    return xlsx


@pytest.fixture
def make_zip_bomb() -> Any:
    return zip_bomb
