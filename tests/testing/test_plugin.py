"""The koomsg.testing kit checks what it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, WritesNothing, new_enterprise


async def test_writes_nothing_sees_a_new_row(
    api: Api, assert_writes_nothing: WritesNothing
) -> None:
    with pytest.raises(AssertionError, match="rows in enterprise"):
        async with assert_writes_nothing():
            await new_enterprise(api, "Other")


def leave_a_file(folder: Path) -> None:
    (folder / "uploads").mkdir(parents=True)
    (folder / "uploads" / "stray.txt").write_text("left behind")


async def test_writes_nothing_sees_a_new_file(
    runtime: Runtime, assert_writes_nothing: WritesNothing
) -> None:
    with pytest.raises(AssertionError, match=r"uploads/stray\.txt"):
        async with assert_writes_nothing():
            leave_a_file(Path(runtime.settings.data_dir))


async def test_writes_nothing_watches_only_the_tables_named(
    api: Api, assert_writes_nothing: WritesNothing
) -> None:
    async with assert_writes_nothing("message"):
        await new_enterprise(api, "Other")
