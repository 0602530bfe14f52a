"""Ids: new_ids gives what as many new_id calls would, in order with them."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import pytest

from koomsg.core import ids
from koomsg.core.ids import id_floor, new_id, new_ids, prefix_of


@pytest.mark.parametrize("count", [1, 2, 1023, 1024, 1025, 5000])
def test_new_ids_encode_as_new_id_does(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # A random part just below a run boundary, so the batch crosses one or more.
    monkeypatch.setattr(ids.secrets, "randbits", lambda bits: (1 << 40) + 1020)
    # Both, so that the state is restored as a pair afterwards.
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_last_random", 0)
    batch = new_ids("msg", count)
    now_ms = ids._last_ms
    assert batch == [
        f"msg_{ids._encode((now_ms << 80) | ((1 << 40) + 1020 + i))}" for i in range(count)
    ]


def test_new_ids_interleaved_with_new_id_strictly_increase() -> None:
    made: list[str] = []
    for _ in range(50):
        made.append(new_id("msg"))
        made += new_ids("msg", secrets.randbelow(3000))
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 30 and prefix_of(i) == "msg" for i in made)


def test_new_ids_are_time_ordered() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    batch = new_ids("msg", 3000)
    time.sleep(0.002)
    after = new_id("msg")
    assert id_floor("msg", before) <= batch[0] < batch[-1] < after


def test_new_ids_of_nothing() -> None:
    assert new_ids("msg", 0) == []
