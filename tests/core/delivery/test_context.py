"""The delivery context a runtime hands the core, and its bounded content cache."""

from __future__ import annotations

from typing import Any, cast

from koomsg.core.delivery.content import Content
from koomsg.core.delivery.context import ContentCache
from koomsg.runtime import Runtime


def fake(name: str) -> Content:
    return cast(Content, name)


def test_the_content_cache_drops_the_least_recently_used_beyond_its_size() -> None:
    cache = ContentCache(size=2)
    cache.put("task:a", fake("a"))
    cache.put("task:b", fake("b"))
    assert cache.get("task:a") == "a"  # a is now the most recently used
    cache.put("task:c", fake("c"))
    assert len(cache) == 2
    assert cache.get("task:b") is None
    assert (cache.get("task:a"), cache.get("task:c")) == ("a", "c")


def test_a_rebuilt_entry_replaces_the_stale_one() -> None:
    cache = ContentCache(size=2)
    cache.put("task:a", fake("old"))
    cache.put("task:a", fake("new"))
    assert len(cache) == 1 and cache.get("task:a") == "new"


async def test_a_runtime_hands_out_one_context_with_its_own_parts(runtime: Runtime) -> None:
    context = runtime.delivery
    assert context is runtime.delivery  # the cache outlives a batch
    assert (context.db, context.settings, context.plugins) == (
        runtime.db,
        runtime.settings,
        runtime.plugins,
    )
    transport: Any = context.transport
    assert transport is runtime.transport
    assert transport.name == runtime.settings.transport
