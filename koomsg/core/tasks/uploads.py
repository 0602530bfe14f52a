"""Recipient files on disk: streamed in, counted, and removed again if the operation fails.

A file is saved as ``<data dir>/uploads/<task id>.<kind>`` before the task row
is committed; ``UploadStore`` deletes what it saved unless the block it guards
ends cleanly (a commit that fails raises through it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from koomsg.core.errors import BadInput
from koomsg.core.tasks.attachments import UploadLike

MAX_RECIPIENT_FILE_BYTES = 40 * 1024 * 1024  # user guide 5.5
MB = 1024 * 1024
CHUNK = MB
FIELD = "recipientFile"


def recipient_file_kind(filename: str | None, head: bytes) -> str:
    """ "xlsx" or "csv", from the content first (a workbook is a ZIP), then the name."""
    name = (filename or "").lower().strip()
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if name.endswith(".csv") or name.endswith(".txt"):
        return "csv"
    if name.endswith(".xlsx"):
        # Named a workbook but not a ZIP: the importer would refuse it anyway; say why now.
        raise BadInput(FIELD, "the file is named .xlsx but is not an Excel workbook")
    raise BadInput(FIELD, "upload the recipients as an .xlsx workbook or a .csv file")


class UploadStore:
    """Where one operation saves uploads; everything saved goes away if the operation fails."""

    def __init__(self, data_dir: Path | str) -> None:
        self.directory = Path(data_dir) / "uploads"
        self.saved: list[Path] = []

    async def save_recipient_file(self, upload: UploadLike, *, task_id: str) -> tuple[Path, str]:
        """Stream ``upload`` to disk; returns the path and the kind ("xlsx" or "csv")."""
        head = await upload.read(CHUNK)
        if not head:
            raise BadInput(FIELD, "the recipient file is empty")
        kind = recipient_file_kind(upload.filename, head)
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        path = self.directory / f"{task_id}.{kind}"
        self.saved.append(path)
        size = 0
        # O_EXCL: a task id names one file, never an existing one.
        handle = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            chunk = head
            while chunk:
                size += len(chunk)
                if size > MAX_RECIPIENT_FILE_BYTES:
                    raise BadInput(
                        FIELD,
                        f"the recipient file is larger than {MAX_RECIPIENT_FILE_BYTES // MB} MB",
                    )
                await asyncio.to_thread(out.write, chunk)
                chunk = await upload.read(CHUNK)
        return path, kind

    def discard(self) -> None:
        for path in self.saved:
            with contextlib.suppress(OSError):
                path.unlink()
        self.saved.clear()

    @classmethod
    @contextlib.asynccontextmanager
    async def scope(cls, data_dir: Path | str) -> AsyncIterator[UploadStore]:
        store = cls(data_dir)
        try:
            yield store
        except BaseException:
            store.discard()
            raise


def remove_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            Path(path).unlink()
