"""Task attachments: a size budget for all of them, a content type from their bytes,
and no executables, scripts, installers or disk images, by name or by content
(mail providers refuse them, and so do we, before anything is sent).
"""

from __future__ import annotations

import io
import mimetypes
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Protocol

from koomsg.core.errors import BadInput

MAX_TOTAL_BYTES = 4 * 1024 * 1024  # user guide 5.5: "The maximum size of attachments is 4 MB"
MAX_FILENAME = 255
FIELD = "attachments"

# What Gmail and Outlook block by extension: Windows executables, scripts, installers, shortcuts.
_BLOCKED = (
    "ade adp apk appx appxbundle bat cab chm cmd com cpl diagcab diagcfg diagpack dll dmg ex_ "
    "exe hta img ins isp iso jar jnlp js jse lib lnk mde msc msi msix msixbundle msp mst nsh "
    "pif ps1 psc1 reg scr sct shb sys vb vbe vbs vhd vhdx vxd wsc wsf wsh xll"
)
BLOCKED_EXTENSIONS = frozenset(_BLOCKED.split())

# (prefix, content type), the first match wins; ZIP comes after the Office formats built on it.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"{\\rtf", "application/rtf"),
)
_OOXML = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_OLE = {
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}


class UploadLike(Protocol):
    """What an uploaded file offers (starlette's UploadFile does)."""

    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def clean_filename(raw: str | None) -> str:
    # The name goes into a MIME header: a CR/LF or other control (or a bidi override
    # that makes "exe.pdf" read "fdp.exe") is refused rather than silently dropped.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in raw or ""):
        raise BadInput(
            FIELD,
            f"the attachment name {(raw or '')[:40]!r} contains control or formatting characters",
        )
    # Browsers may send a full client path: keep its last part.
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise BadInput(FIELD, "every attachment needs a file name")
    if len(name) > MAX_FILENAME:
        raise BadInput(
            FIELD, f"the attachment name {name[:40]!r}… is longer than {MAX_FILENAME} characters"
        )
    return name


_PROGRAM_MAGIC = (
    b"MZ",  # Windows PE (exe, dll, scr, sys…)
    b"\x7fELF",  # Linux and other Unix programs
    b"\xfe\xed\xfa\xce",  # Mach-O, 32 and 64 bit, both byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary (and Java class files)
    b"#!",  # scripts with an interpreter line
    b"MSCF",  # Windows cabinet (installer payloads)
    b"L\x00\x00\x00\x01\x14\x02\x00",  # Windows shortcut (.lnk)
    b"conectix",  # VHD disk image
    b"vhdxfile",  # VHDX disk image
)


def _blocked_content(data: bytes) -> str | None:
    """What kind of blocked file the bytes are, whatever the name says, else None."""
    if data.startswith(_PROGRAM_MAGIC):
        return "an executable program or script"
    if data[32769:32774] == b"CD001" or (len(data) >= 512 and data[-512:-508] == b"koly"):
        return "a disk image"  # ISO 9660 volume descriptor; Apple DMG trailer
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        inner = _blocked_in_zip(data)
        if inner:
            return f"an archive holding {inner}"
    return None


def _blocked_in_zip(data: bytes) -> str | None:
    """The first entry of a ZIP (or JAR, APK…) that would be blocked by name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()[:10_000]
    except (zipfile.BadZipFile, ValueError, OSError):
        return None  # not a readable archive: judged by its name and magic alone
    if "META-INF/MANIFEST.MF" in names and any(n.endswith(".class") for n in names):
        return "a Java program"
    for name in names:
        extension = _extension(name.rstrip(". /"))
        if extension in BLOCKED_EXTENSIONS:
            return name
    return None


def refuse_executable(filename: str, data: bytes) -> None:
    """BAD_USER_INPUT naming the file when it is a program or script, by name or by content."""
    # Windows opens a file by its last extension (trailing dots and spaces dropped).
    extension = _extension(filename.rstrip(". "))
    if extension in BLOCKED_EXTENSIONS:
        raise BadInput(
            FIELD, f"{filename}: .{extension} files are not allowed as attachments (executable)"
        )
    blocked = _blocked_content(data)
    if blocked:
        raise BadInput(FIELD, f"{filename}: is {blocked}, which is not allowed as an attachment")


def sniff_content_type(filename: str, data: bytes) -> str:
    """The content type the bytes show, else what the extension says, else octet-stream."""
    extension = _extension(filename)
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _OOXML.get(extension, "application/zip")
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            if content_type == "application/x-ole-storage":
                return _OLE.get(extension, "application/octet-stream")
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(f"x.{extension}") if extension else (None, None)
    if guessed:
        return guessed
    if _looks_like_text(data):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\0" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        return exc.start >= len(sample) - 3
    return True


async def read_attachments(uploads: list[UploadLike] | None) -> list[AttachmentFile]:
    """Read every attachment, never more than one byte past the shared budget."""
    files: list[AttachmentFile] = []
    total = 0
    for upload in uploads or []:
        filename = clean_filename(upload.filename)
        data = await upload.read(MAX_TOTAL_BYTES - total + 1)
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise BadInput(
                FIELD, f"attachments are at most {MAX_TOTAL_BYTES // (1024 * 1024)} MB together"
            )
        refuse_executable(filename, data)
        files.append(AttachmentFile(filename, sniff_content_type(filename, data), data))
    return files
