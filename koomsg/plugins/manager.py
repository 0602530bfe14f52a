"""Loading plugins and calling hooks, async-aware; telling observers off the caller's path.

Built-ins first, then entry points of the group ``koomsg``, then the modules
named in ``KOOMSG_PLUGINS``: pluggy calls the last registered first, so
partners override built-ins. A plugin that fails to import stops start-up
naming it; a misspelled hook implementation is caught by ``check_pending``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from koomsg.plugins import PROJECT, hookspecs

if TYPE_CHECKING:
    from koomsg.plugins.types import MessageEvent

log = logging.getLogger(__name__)

DEFAULT_PLUGINS = (
    "koomsg.plugins.builtin.outbox",
    "koomsg.plugins.builtin.review",
    "koomsg.plugins.builtin.smtp",
    "koomsg.plugins.builtin.public_templates",
    "koomsg.plugins.builtin.billing",
)


class PluginLoadError(Exception):
    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"plugin {name!r} failed to load: {type(error).__name__}: {error}")
        self.plugin_name = name


def make_manager(
    extra_modules: Iterable[str] = (), *, entry_points: bool = True
) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    if entry_points:
        _load_entry_points(manager)
    for name in extra_modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise PluginLoadError(name, exc) from exc
        if manager.is_registered(module):
            continue
        manager.register(module, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc.plugin), exc) from exc
    return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=PROJECT):
        if manager.get_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginLoadError(entry_point.name, exc) from exc
        manager.register(plugin, name=entry_point.name)


async def call_first(manager: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Any:
    """The first non-None answer, awaiting async implementations one at a time."""
    caller = getattr(manager.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        args = {name: kwargs[name] for name in impl.argnames}
        result = impl.function(**args)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            return result
    return None


async def call_all(manager: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[Any]:
    """Every non-None answer, last registered first."""
    results = []
    for result in getattr(manager.hook, hook_name)(**kwargs):
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            results.append(result)
    return results


# Observers' tasks, held so the event loop does not drop them half way.
_background: set[asyncio.Task[None]] = set()


def emit_events(manager: pluggy.PluginManager, events: Sequence[MessageEvent]) -> None:
    """Tell ``koomsg_message_event`` observers, off the caller's path.

    Returns at once: the observers run in a task on the running event loop, every
    event to every implementation in turn, async ones awaited. A failing observer
    is logged and never felt by the caller or by the other observers.
    """
    callers = manager.hook.koomsg_message_event.get_hookimpls()
    if not events or not callers:
        return

    async def notify() -> None:
        for event in events:
            for impl in callers:
                try:
                    result = impl.function(event=event)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("message event observer %s failed", impl.plugin_name)

    task = asyncio.get_running_loop().create_task(notify())
    _background.add(task)
    task.add_done_callback(_background.discard)
