"""The sandboxed reader: what it refuses before any row, and the rows it reads."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from koomsg.core.recipients import xlsx as reader
from koomsg.core.recipients.sandbox import run


def messages(
    path: Path, kind: str = "xlsx", params: tuple[str, ...] = ("name",), mode: str = "rows"
) -> list[dict]:
    out = io.StringIO()
    run(mode, kind, str(path), list(params), out)  # type: ignore[arg-type]
    return [json.loads(line) for line in out.getvalue().splitlines()]


def rows_of(found: list[dict]) -> list[list]:
    return [row for message in found for row in message.get("rows", [])]


def test_xlsx_rows_keep_spreadsheet_row_numbers_and_text_values(
    tmp_path: Path, make_xlsx: Any
) -> None:
    book = make_xlsx(
        tmp_path / "r.xlsx",
        [
            ["Ignored", " EMAIL ", "Name", "when"],
            ["x", "ann@example.org", "Ann", date(2025, 3, 1)],
            [None, None, None, None],
            ["x", "bob@example.org", 42, 1.5],
            ["x", "cat@example.org", "A & B <c>", datetime(2025, 3, 1, 12, 30)],
        ],
    )
    found = messages(book, params=("name", "WHEN"))
    assert found[0] == {"header": {"email": 1, "params": {"name": 2, "WHEN": 3}}}
    assert rows_of(found) == [
        [2, "ann@example.org", "Ann", "2025-03-01"],
        [4, "bob@example.org", "42", "1.5"],
        [5, "cat@example.org", "A & B <c>", "2025-03-01T12:30:00"],
    ]
    assert found[-1] == {"end": 3}


def test_fast_and_cell_by_cell_paths_agree(tmp_path: Path, make_xlsx: Any) -> None:
    rows = [["email", "n"]] + [[f"u{i}@example.org", i if i % 2 else f"t&{i}"] for i in range(50)]
    for constant_memory in (False, True):  # shared strings, then inline strings
        sheet = reader.SheetReader(
            reader.check_container(
                str(make_xlsx(tmp_path / "a.xlsx", rows, constant_memory=constant_memory))
            )
        )
        with sheet.archive.open(sheet.sheet) as stream:
            data = stream.read()
        assert list(sheet._block(data)) == list(sheet._slow_block(data))
        assert len(list(sheet._block(data))) == 51


def test_csv_with_bom_semicolons_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(
        '\ufeffEmail;name\nann@example.org;"Ann\nSmith"\n\nbob@example.org;Bob\n'.encode()
    )
    found = messages(path, "csv")
    assert rows_of(found) == [[2, "ann@example.org", "Ann\nSmith"], [4, "bob@example.org", "Bob"]]


def test_missing_parameter_column_is_named(tmp_path: Path, make_xlsx: Any) -> None:
    book = make_xlsx(tmp_path / "r.xlsx", [["email", "name"], ["a@example.org", "A"]])
    found = messages(book, params=("name", "code"))
    assert found == [{"refused": "the header row has no column for the template parameter code"}]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not an .xlsx workbook"),
        (b"PK\x03\x04garbage", "damaged zip"),
    ],
)
def test_refused_before_any_row(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(content)
    (found,) = messages(path)
    assert reason in found["refused"]


def test_zip_bomb_is_refused(tmp_path: Path, make_zip_bomb: Any) -> None:
    (found,) = messages(make_zip_bomb(tmp_path / "bomb.xlsx"))
    assert "zip bomb" in found["refused"]


def test_binary_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (found,) = messages(path, "csv")
    assert "not a CSV" in found["refused"]


def test_numbers_read_as_typed() -> None:
    assert reader.number_text("42", is_date=False) == "42"
    assert reader.number_text("13800138000", is_date=False) == "13800138000"
    assert reader.number_text("4.2E+1", is_date=False) == "42"
    assert reader.number_text("0.1", is_date=False) == "0.1"
    assert reader.number_text("45717", is_date=True) == "2025-03-01"
