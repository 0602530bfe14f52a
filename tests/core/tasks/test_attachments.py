from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from koomsg.core.errors import BadInput
from koomsg.core.ids import id_floor, new_id
from koomsg.core.tasks.attachments import (
    MAX_TOTAL_BYTES,
    clean_filename,
    read_attachments,
    refuse_executable,
    sniff_content_type,
)
from koomsg.core.tasks.uploads import recipient_file_kind


@dataclass
class FakeUpload:
    filename: str | None
    data: bytes
    offset: int = 0

    async def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.bin", b"%PDF-1.7", "application/pdf"),
        ("photo", b"\x89PNG\r\n\x1a\nxx", "image/png"),
        ("x.txt", b"\xff\xd8\xff\xe0", "image/jpeg"),
        ("anim.gif", b"GIF89a..", "image/gif"),
        (
            "report.docx",
            b"PK\x03\x04rest",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "sheet.xlsx",
            b"PK\x03\x04rest",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("bundle", b"PK\x03\x04rest", "application/zip"),
        ("notes", "héllo".encode(), "text/plain"),
        ("data.csv", b"a,b", "text/csv"),
        ("blob", b"\x00\x01\x02", "application/octet-stream"),
    ],
)
def test_content_type_comes_from_the_bytes_first(name: str, data: bytes, expected: str) -> None:
    assert sniff_content_type(name, data) == expected


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("setup.exe", b"text"),
        ("SCRIPT.VBS", b"text"),
        ("trick.pdf.exe", b"%PDF"),
        ("run.bat. ", b"echo"),
        ("doc.pdf", b"MZ\x90\x00"),
        ("elf", b"\x7fELF"),
    ],
)
def test_executables_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(BadInput) as raised:
        refuse_executable(name, data)
    assert raised.value.field == "attachments"


def test_harmless_names_pass() -> None:
    refuse_executable("invoice.exe.pdf", b"%PDF-1.4")
    assert clean_filename("C:\\Users\\ann\\report.pdf") == "report.pdf"
    with pytest.raises(BadInput):
        clean_filename("  ")


async def test_budget_is_shared_and_exact() -> None:
    half = MAX_TOTAL_BYTES // 2
    files = await read_attachments(
        [FakeUpload("a.txt", b"a" * half), FakeUpload("b.txt", b"b" * half)]
    )
    assert [len(f.data) for f in files] == [half, half]
    with pytest.raises(BadInput):
        await read_attachments(
            [FakeUpload("a.txt", b"a" * half), FakeUpload("b.txt", b"b" * (half + 1))]
        )


def test_recipient_file_kind() -> None:
    assert recipient_file_kind("r.xlsx", b"PK\x03\x04") == "xlsx"
    assert recipient_file_kind("whatever", b"PK\x03\x04") == "xlsx"
    assert recipient_file_kind("R.CSV", b"email\n") == "csv"
    for name, head in (("r.xlsx", b"email\n"), ("r.pdf", b"%PDF")):
        with pytest.raises(BadInput) as raised:
            recipient_file_kind(name, head)
        assert raised.value.field == "recipientFile"


def test_id_floor_brackets_ids_by_time() -> None:
    now = datetime.now(UTC)
    before = id_floor("msg", now - timedelta(milliseconds=5))
    made = new_id("msg")
    after = id_floor("msg", now + timedelta(seconds=1))
    assert before <= made < after
    assert id_floor("msg", datetime(1970, 1, 1, tzinfo=UTC)) == "msg_" + "0" * 26


def _zip(entries: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("report.pdf", b"MZ\x90\x00" + b"\0" * 60, "executable"),
        ("notes.txt", b"#!/bin/sh\nrm -rf ~\n", "executable"),
        ("photo.jpg", b"\xca\xfe\xba\xbe\0\0\0\x02", "executable"),
        ("data.bin", b"MSCF\0\0\0\0", "executable"),
        ("link.txt", b"L\x00\x00\x00\x01\x14\x02\x00" + b"\0" * 60, "executable"),
        ("disk.pdf", b"\0" * 32769 + b"CD001" + b"\0" * 100, "disk image"),
        ("mac.zip", b"\0" * 1000 + b"koly" + b"\0" * 508, "disk image"),
        ("bundle.zip", _zip({"readme.txt": b"hi", "tools/setup.exe": b"MZ"}), "setup.exe"),
        ("app.zip", _zip({"META-INF/MANIFEST.MF": b"x", "a/Main.class": b"x"}), "Java"),
    ],
)
def test_blocked_content_is_refused_whatever_the_name(name: str, data: bytes, words: str) -> None:
    with pytest.raises(BadInput) as raised:
        refuse_executable(name, data)
    assert raised.value.field == "attachments" and words in raised.value.message


def test_office_files_and_plain_archives_pass() -> None:
    refuse_executable("sheet.xlsx", _zip({"xl/workbook.xml": b"<workbook/>"}))
    refuse_executable("photos.zip", _zip({"a.jpg": b"\xff\xd8\xff"}))


@pytest.mark.parametrize(
    "name", ["a\r\nContent-Type: text/html.pdf", "a\x00b.pdf", "tab\there.pdf", "gpj\u202e.exe"]
)
def test_control_characters_in_a_name_are_refused(name: str) -> None:
    with pytest.raises(BadInput) as raised:
        clean_filename(name)
    assert raised.value.field == "attachments" and "control" in raised.value.message
