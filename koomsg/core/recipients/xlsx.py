"""A streaming .xlsx reader for the import sandbox: standard library only.

Why not python-calamine or openpyxl: calamine loads the whole sheet (about
400 MB for a million rows) and has aborted on crafted files; openpyxl's
read-only mode takes about 20 s for a million rows. This reader inflates the
sheet XML in blocks and picks cells out with regular expressions: one
``findall`` per block for the common shapes Excel, LibreOffice and xlsxwriter
write, and a slower cell-by-cell path for blocks holding anything else
(formulas, rich text, namespace prefixes), so both give the same values.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import unescape
from xml.etree import ElementTree

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
MAX_ENTRIES = 10_000
# A 40 MB workbook of plain rows inflates to roughly 400 MB of XML (ratio ~10:1).
MAX_TOTAL_UNCOMPRESSED = 1 << 30
MAX_RATIO = 100
RATIO_CHECK_FROM = 4 << 20  # tiny entries compress absurdly well without being bombs
MAX_METADATA_BYTES = 32 << 20  # workbook.xml, rels, styles

# What a real workbook can hold (Excel's own limits): a file claiming more is crafted.
MAX_SHEET_ROWS = 1_048_576
MAX_SHEET_COLUMNS = 16_384
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\bref="[A-Z]{0,3}\d*:?([A-Z]{0,3})(\d*)"')
DTD_HEAD_BYTES = 64 << 10

MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
BLOCK = 1 << 20

# The common cell shapes, as Excel and xlsxwriter write them.
_FAST_CELL = re.compile(
    rb'<c r="([A-Z]{1,3})(\d+)"(?: s="(\d+)")?(?: t="(\w+)")?(?: s="(\d+)")?'
    rb"(?:/>|>(?:<v>([^<]*)</v>|<is><t(?: [^>]*)?>([^<]*)</t></is>)?</c>)"
)
_ANY_CELL_START = re.compile(rb"<(?:\w+:)?c[\s/>]")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
_ROW_START = re.compile(rb"<(?:\w+:)?row\b([^>]*?)(/?)>")
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_ATTR = re.compile(rb'\b(r|t|s)="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.S)
_TEXT = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>(.*?)</(?:\w+:)?t>", re.S)
_PHONETIC = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_REF = re.compile(rb"([A-Z]{1,3})(\d*)")
_DATE_CODE = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')  # quoted text, colours, escapes
_BUILTIN_DATE_FORMATS = set(range(14, 23)) | {45, 46, 47}
_EPOCH = datetime(1899, 12, 30)


class Unreadable(Exception):
    """The file is not a workbook this reader accepts; the message says why (for the user)."""


def column_index(letters: bytes) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ch - 64
    return index - 1


def check_container(path: str) -> zipfile.ZipFile:
    """Open the workbook after refusing what must never be parsed: OLE2, non-zips, zip bombs."""
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic == OLE2_MAGIC:
        raise Unreadable(
            "the file is encrypted (password-protected) or an old .xls workbook; save it as .xlsx"
        )
    if not magic.startswith(ZIP_MAGIC):
        raise Unreadable("the file is not an .xlsx workbook")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise Unreadable("the file is not an .xlsx workbook (damaged zip)") from None
    entries = archive.infolist()
    names = {info.filename for info in entries}
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise Unreadable("the file is not an .xlsx workbook")
    if len(entries) > MAX_ENTRIES:
        raise Unreadable("the workbook has too many parts")
    total = 0
    for info in entries:
        if info.flag_bits & 0x1:
            raise Unreadable("the workbook is encrypted")
        total += info.file_size
        if info.file_size > RATIO_CHECK_FROM and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise Unreadable("the workbook expands to far more data than it holds (zip bomb)")
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise Unreadable("the workbook expands to more than 1 GiB")
    return archive


def refuse_dtd(data: bytes, name: str) -> None:
    """Workbooks never declare a DTD or entities; a part that does is an XXE or
    entity-expansion attempt, refused before any XML parser sees it."""
    if _DTD.search(data):
        raise Unreadable(f"the workbook part {name} declares a DTD or entities, which is refused")


def check_dimension(head: bytes) -> None:
    """Refuse a sheet whose dimension record claims more than a workbook can hold."""
    match = _DIMENSION.search(head)
    if match is None:
        return
    letters, digits = match.groups()
    if digits and int(digits) > MAX_SHEET_ROWS:
        raise Unreadable(f"the sheet claims {int(digits):,} rows, more than a workbook can hold")
    if letters and column_index(letters) >= MAX_SHEET_COLUMNS:
        raise Unreadable("the sheet claims more columns than a workbook can hold")


def _small_xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_METADATA_BYTES:
        raise Unreadable(f"the workbook part {name} is too large")
    data = archive.read(name)
    refuse_dtd(data, name)
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise Unreadable(f"the workbook part {name} is not valid XML") from None


def first_sheet(archive: zipfile.ZipFile) -> str:
    """The part name of the first sheet, in workbook order (the one the user sees first)."""
    workbook = _small_xml(archive, "xl/workbook.xml")
    sheet = workbook.find(f"{MAIN_NS}sheets/{MAIN_NS}sheet") if workbook is not None else None
    if sheet is None:
        raise Unreadable("the workbook has no sheet")
    rel_id = sheet.get(f"{REL_NS}id")
    rels = _small_xml(archive, "xl/_rels/workbook.xml.rels")
    for rel in rels if rels is not None else ():
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            name = target.lstrip("/") if target.startswith("/") else "xl/" + target
            if name in archive.namelist():
                return name
    raise Unreadable("the workbook's first sheet is missing")


def date_styles(archive: zipfile.ZipFile) -> set[int]:
    """Indexes of cell styles whose number format shows a date or time."""
    styles = _small_xml(archive, "xl/styles.xml")
    if styles is None:
        return set()
    date_formats = set(_BUILTIN_DATE_FORMATS)
    for fmt in styles.iter(f"{MAIN_NS}numFmt"):
        code = _DATE_CODE.sub("", fmt.get("formatCode", "")).lower()
        if any(ch in code for ch in "dmyhs"):
            date_formats.add(int(fmt.get("numFmtId", "-1")))
    xfs = styles.find(f"{MAIN_NS}cellXfs")
    return {
        i
        for i, xf in enumerate(xfs if xfs is not None else ())
        if int(xf.get("numFmtId", "0")) in date_formats
    }


def shared_strings(archive: zipfile.ZipFile) -> list[str]:
    """The shared string table, read incrementally (it can hold a million entries)."""
    name = "xl/sharedStrings.xml"
    if name not in archive.namelist():
        return []
    strings: list[str] = []
    with archive.open(name) as stream:
        refuse_dtd(stream.read(DTD_HEAD_BYTES), name)
    try:
        with archive.open(name) as stream:
            for _, element in ElementTree.iterparse(stream, events=("end",)):
                if element.tag == f"{MAIN_NS}si":
                    # Direct text or rich-text runs; phonetic guides (rPh) are not the value.
                    parts = [element.findtext(f"{MAIN_NS}t") or ""]
                    parts += [
                        run.findtext(f"{MAIN_NS}t") or "" for run in element.findall(f"{MAIN_NS}r")
                    ]
                    strings.append("".join(parts))
                    element.clear()
    except ElementTree.ParseError:
        raise Unreadable("the workbook's shared strings are not valid XML") from None
    return strings


def number_text(raw: str, *, is_date: bool) -> str:
    """Cell numbers as a person typed them: 42 not 42.0; dates as ISO 8601."""
    if not is_date and raw.isdigit() and len(raw) < 16:
        return raw.lstrip("0") or "0"
    try:
        number = float(raw)
    except ValueError:
        return raw
    if is_date and 0 <= number < 2_958_466:
        moment = _EPOCH + timedelta(days=number)
        moment = moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond / 1e6))
        return moment.date().isoformat() if number == int(number) else moment.isoformat()
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


class SheetReader:
    """Rows of the first sheet as ``(row number, {column index: text})``, empty rows skipped."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.sheet = first_sheet(archive)
        self.dates = date_styles(archive)
        self.strings = shared_strings(archive)
        self._columns: dict[bytes, int] = {}

    def rows(self) -> Iterator[tuple[int, dict[int, str]]]:
        pending = b""
        first = True
        with self.archive.open(self.sheet) as stream:
            while True:
                block = stream.read(BLOCK)
                if not block:
                    break
                if first:
                    refuse_dtd(block[:DTD_HEAD_BYTES], self.sheet)
                    check_dimension(block[:DTD_HEAD_BYTES])
                    first = False
                elif b"<!" in block and _DTD.search(block):
                    refuse_dtd(block, self.sheet)
                pending += block
                cut = _last_row_end(pending)
                if cut:
                    yield from self._block(pending[:cut])
                    pending = pending[cut:]
        if pending:
            yield from self._block(pending)

    def _block(self, data: bytes) -> Iterator[tuple[int, dict[int, str]]]:
        matches = _FAST_CELL.findall(data)
        # Counting is cheap; any cell the fast pattern skipped sends the block down the slow path.
        if len(matches) != data.count(b"<c ") or b":c " in data or b"<c>" in data:
            yield from self._slow_block(data)
            return
        columns = self._columns
        strings, dates = self.strings, self.dates
        cells: dict[int, str] = {}
        row_key, row_number = b"", 0
        for letters, number, style, kind, style_after, value, inline in matches:
            if number != row_key:
                if cells:
                    yield row_number, cells
                row_key, row_number, cells = number, int(number), {}
                if row_number > MAX_SHEET_ROWS:
                    raise Unreadable(f"the sheet has a row {row_number:,}, past a workbook's end")
            if kind == b"inlineStr":
                text = inline.decode()
                if "&" in text:
                    text = unescape(text)
            elif kind == b"s":
                index = int(value)
                text = strings[index] if index < len(strings) else ""
            elif kind == b"" and value:
                style = style or style_after
                text = number_text(value.decode(), is_date=bool(style) and int(style) in dates)
            else:
                text = self._value(kind, style or style_after, value, inline)
            if text:
                column = columns.get(letters)
                if column is None:
                    column = columns[letters] = column_index(letters)
                cells[column] = text
        if cells:
            yield row_number, cells

    def _slow_block(self, data: bytes) -> Iterator[tuple[int, dict[int, str]]]:
        row_number = 0
        for piece in _ROW_END.split(data):
            start = _ROW_START.search(piece)
            if start is None:
                continue
            attrs = dict(_ATTR.findall(start.group(1)))
            row_number = int(attrs[b"r"]) if attrs.get(b"r", b"").isdigit() else row_number + 1
            if row_number > MAX_SHEET_ROWS:
                raise Unreadable(f"the sheet has a row {row_number:,}, past a workbook's end")
            if start.group(2):  # <row/>: nothing in it
                continue
            cells: dict[int, str] = {}
            position = -1
            for cell_attrs, body in _CELL.findall(piece, start.end()):
                found = dict(_ATTR.findall(cell_attrs))
                ref = _REF.match(found.get(b"r", b""))
                position = column_index(ref.group(1)) if ref else position + 1
                body = _PHONETIC.sub(b"", body)
                value = _VALUE.search(body)
                inline = b"".join(_TEXT.findall(body))
                text = self._value(
                    found.get(b"t", b"").decode(), found.get(b"s", b"").decode(),
                    value.group(1) if value else b"", inline,
                )  # fmt: skip
                if text:
                    cells[position] = text
            if cells:
                yield row_number, cells

    def _value(self, kind: bytes | str, style: bytes | str, value: bytes, inline: bytes) -> str:
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "inlineStr":
            return _text(inline)
        if kind == "s":
            index = int(value) if value.strip().isdigit() else -1
            return self.strings[index] if 0 <= index < len(self.strings) else ""
        if kind in ("str", "e"):
            return _text(value)
        if kind == "b":
            return "TRUE" if value.strip() == b"1" else "FALSE"
        if not value:
            return ""
        is_date = bool(style) and int(style) in self.dates
        return number_text(value.decode("ascii", "replace"), is_date=is_date)


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return unescape(text) if "&" in text else text


def _last_row_end(data: bytes) -> int:
    """Where the last complete row of ``data`` ends (0: none yet)."""
    end = len(data)
    while (at := data.rfind(b"row>", 0, end)) >= 0:
        start = data.rfind(b"<", 0, at)
        if start >= 0 and _ROW_END.fullmatch(data, start, at + 4):
            return at + 4
        end = at
    return 0
