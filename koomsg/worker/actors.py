"""dramatiq actors: thin, each awaiting one core function.

Actors find the process's worker runtime through ``worker_runtime()``. It is
built lazily on the AsyncIO middleware's event loop, because async database
connections belong to the loop that opened them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from koomsg.config import Settings
from koomsg.runtime import Runtime

ACTORS: list[dramatiq.Actor[Any, Any]] = []

if dramatiq.broker.global_broker is None:
    # Actors are declared at import; without a broker set yet dramatiq would
    # build a RabbitMQ one. install_broker() re-binds them to the real broker.
    dramatiq.set_broker(StubBroker())

_lock = threading.Lock()
_settings: Settings | None = None
_plugins: Any = None
_runtime: Runtime | None = None


def configure_worker(settings: Settings, plugins: Any = None, broker: Any = None) -> None:
    """Tell actors which settings (and plugins) to build their runtime from."""
    global _settings, _plugins, _runtime
    with _lock:
        _settings, _plugins, _runtime = settings, plugins, None
        _broker_holder["broker"] = broker


_broker_holder: dict[str, Any] = {}


def worker_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            if _settings is None:
                raise RuntimeError("configure_worker() was not called in this process")
            _runtime = Runtime.build(
                _settings, plugins=_plugins, broker=_broker_holder.get("broker")
            )
        return _runtime


async def reset_worker_runtime() -> None:
    """Close the worker runtime (tests, shutdown) so the next actor builds a fresh one."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        await runtime.close()


def koomsg_actor(**options: Any) -> Callable[[Callable[..., Any]], dramatiq.Actor[Any, Any]]:
    def declare(fn: Callable[..., Any]) -> dramatiq.Actor[Any, Any]:
        actor: dramatiq.Actor[Any, Any] = dramatiq.actor(fn, **options)
        ACTORS.append(actor)
        return actor

    return declare
