"""The child process that reads an uploaded recipient file: limits first, then parse.

Run as ``python -I -c <bootstrap> <mode> <kind> <path> <params-json> [options]``
by ``importer.py``. Standard library only, no database, no network. Output
is JSON lines on stdout:

- ``{"header": {"email": 0, "params": {"name": 2}}}`` or
  ``{"refused": "<reason for the user>"}`` (then exit 0): always first;
- in ``rows`` mode, ``{"rows": [[row number, email, value, ...], ...]}``
  batches, values in the order of the params given;
- ``{"end": <rows read>}`` last. Anything else (no end, a signal, a non-zero
  exit, a limit hit) means the file could not be read.

Limits are set by the child on itself before it opens the file: the input is
untrusted, the code is not, and ``preexec_fn`` is unsafe in the threaded
worker that spawns this.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import sys
from collections.abc import Iterator, Sequence

from koomsg.core.recipients.xlsx import SheetReader, Unreadable, check_container

# One past MAX_PARAM_VALUE (core/templates/params.py; a test checks they agree): the
# sandbox imports nothing beyond the reader, so the number is repeated here.
CELL_KEEP = 1025
BATCH_ROWS = 2000
BATCH_CHARS = 1 << 20
CSV_SNIFF_BYTES = 64 << 10


def set_limits(*, memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not dump a core per upload
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # reads only


def resolve_header(cells: dict[int, str], params: Sequence[str]) -> dict[str, object]:
    """Column positions of ``email`` and each param, matched trimmed and case-insensitively."""
    positions: dict[str, int] = {}
    wanted = {"email", *(name.strip().casefold() for name in params)}
    for position in sorted(cells):
        name = cells[position].strip().casefold()
        if name in positions and name in wanted:
            # Which of the two would the user mean? Refuse rather than guess.
            raise Unreadable(
                f"the header row has the column {cells[position].strip()} twice "
                f"(columns {column_letters(positions[name])} and {column_letters(position)})"
            )
        positions.setdefault(name, position)
    if "email" not in positions:
        raise Unreadable("the header row (row 1) has no column named email")
    missing = [name for name in params if name.strip().casefold() not in positions]
    if missing:
        raise Unreadable(
            f"the header row has no column for the template parameter {', '.join(missing)}"
        )
    return {
        "email": positions["email"],
        "params": {name: positions[name.strip().casefold()] for name in params},
    }


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def csv_rows(path: str) -> Iterator[tuple[int, dict[int, str]]]:
    with open(path, "rb") as handle:
        head = handle.read(CSV_SNIFF_BYTES)
    if b"\0" in head or head.startswith(b"\xd0\xcf\x11\xe0") or head.startswith(b"PK\x03\x04"):
        raise Unreadable("the file is not a CSV text file")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut at the sniff boundary is fine
            raise Unreadable("the CSV file is not UTF-8 text") from None
        text = head[: exc.start].decode("utf-8-sig")
    first_line = text.splitlines()[0] if text else ""
    delimiter = max(",;\t", key=first_line.count)
    with open(path, encoding="utf-8-sig", newline="") as stream:
        for number, record in enumerate(csv.reader(stream, delimiter=delimiter), start=1):
            cells = {i: value for i, value in enumerate(record) if value.strip()}
            if cells:
                yield number, cells


def sheet_rows(kind: str, path: str) -> Iterator[tuple[int, dict[int, str]]]:
    if kind == "csv":
        return csv_rows(path)
    if kind == "xlsx":
        return SheetReader(check_container(path)).rows()
    raise Unreadable(f"unknown file kind {kind}")


def emit(out: io.TextIOBase, message: object) -> None:
    out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def run(
    mode: str,
    kind: str,
    path: str,
    params: Sequence[str],
    out: io.TextIOBase,
    crash_after: int = -1,
) -> None:
    try:
        rows = sheet_rows(kind, path)
        header_row = next(rows, None)
        if header_row is None:
            raise Unreadable("the file has no header row")
        if header_row[0] != 1:
            raise Unreadable("the header must be on row 1")
        header = resolve_header(header_row[1], params)
    except (Unreadable, csv.Error, UnicodeDecodeError) as exc:
        reason = str(exc) if isinstance(exc, Unreadable) else "the file is not readable text"
        emit(out, {"refused": reason})
        return
    emit(out, {"header": header})
    if mode != "rows":
        return
    params_at: dict[str, int] = header["params"]  # type: ignore[assignment]
    columns = [int(header["email"]), *params_at.values()]  # type: ignore[call-overload]
    batch: list[list[object]] = []
    size = count = 0
    for number, cells in rows:
        if count == crash_after:
            os.abort()  # tests only: stands for a parser bug that kills the process
        # A cell past the value limit is cut one character beyond it: the parent still
        # refuses the row, and a crafted 100 MB cell never crosses the pipe.
        values = [cells.get(c, "")[:CELL_KEEP] for c in columns]
        batch.append([number, *values])
        count += 1
        size += sum(len(v) for v in values)
        if len(batch) >= BATCH_ROWS or size >= BATCH_CHARS:
            emit(out, {"rows": batch})
            batch, size = [], 0
    if batch:
        emit(out, {"rows": batch})
    emit(out, {"end": count})


def main(argv: Sequence[str]) -> int:
    mode, kind, path, params_json, memory, cpu, crash_after = argv
    set_limits(memory_bytes=int(memory), cpu_seconds=int(cpu))
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", write_through=False)
    run(mode, kind, path, json.loads(params_json), out, crash_after=int(crash_after))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
