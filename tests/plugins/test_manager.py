from __future__ import annotations

import asyncio
import inspect
import sys
import types
from datetime import UTC, datetime

import pytest

from koomsg.plugins import hookimpl, hookspecs
from koomsg.plugins.manager import (
    DEFAULT_PLUGINS,
    PluginLoadError,
    call_first,
    emit_events,
    make_manager,
)
from koomsg.plugins.types import (
    EnterpriseInfo,
    MessageEvent,
    ReviewDecision,
    ReviewOutcome,
    TemplateForReview,
)

TEMPLATE = TemplateForReview(
    id="tpl_1", name="t", body_type="PLAIN_TEXT", body="hi", params=[], support_unsubscribe=False
)
ENTERPRISE = EnterpriseInfo(
    id="ent_1", name="e", industry_class="NON_SENSITIVE", real_name_verified=True
)


def fake_module(name: str, **functions: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for attr, value in functions.items():
        setattr(module, attr, value)
    sys.modules[name] = module
    return module


def test_every_hook_is_documented_where_it_is_declared() -> None:
    manager = make_manager(entry_points=False)
    names = [name for name in dir(manager.hook) if name.startswith("koomsg_")]
    assert set(names) == {
        "koomsg_transports",
        "koomsg_review_template",
        "koomsg_billing_reserve",
        "koomsg_billing_settle",
        "koomsg_message_event",
        "koomsg_public_templates",
    }
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, f"{name}: say when it is called"
        assert ("return" in doc.lower()) or ("All implementations" in doc), (
            f"{name}: say what it returns"
        )


def test_builtins_register_through_the_same_hooks() -> None:
    manager = make_manager(entry_points=False)
    for name in DEFAULT_PLUGINS:
        assert manager.get_plugin(name) is not None


async def test_a_partner_plugin_overrides_the_builtin_review() -> None:
    @hookimpl
    def koomsg_review_template(
        template: TemplateForReview, enterprise: EnterpriseInfo
    ) -> ReviewDecision:
        return ReviewDecision(ReviewOutcome.REJECT, "no templates on Fridays")

    fake_module("koomsg_test_partner_review", koomsg_review_template=koomsg_review_template)
    manager = make_manager(["koomsg_test_partner_review"], entry_points=False)
    decision = await call_first(
        manager, "koomsg_review_template", template=TEMPLATE, enterprise=ENTERPRISE
    )
    assert decision.outcome is ReviewOutcome.REJECT
    plain = make_manager(entry_points=False)
    decision = await call_first(
        plain, "koomsg_review_template", template=TEMPLATE, enterprise=ENTERPRISE
    )
    assert decision.outcome is ReviewOutcome.APPROVE


async def test_async_implementations_are_awaited_and_none_defers() -> None:
    @hookimpl
    async def koomsg_review_template(
        template: TemplateForReview, enterprise: EnterpriseInfo
    ) -> None:
        return None

    fake_module("koomsg_test_deferring", koomsg_review_template=koomsg_review_template)
    manager = make_manager(["koomsg_test_deferring"], entry_points=False)
    decision = await call_first(
        manager, "koomsg_review_template", template=TEMPLATE, enterprise=ENTERPRISE
    )
    assert decision.outcome is ReviewOutcome.APPROVE


def test_a_plugin_that_fails_to_import_is_named() -> None:
    with pytest.raises(PluginLoadError) as raised:
        make_manager(["koomsg_missing_plugin_xyz"], entry_points=False)
    assert "koomsg_missing_plugin_xyz" in str(raised.value)


def test_a_misspelled_hook_is_caught() -> None:
    @hookimpl
    def koomsg_transport(settings: object) -> list[object]:
        return []

    fake_module("koomsg_test_misspelled", koomsg_transport=koomsg_transport)
    with pytest.raises(PluginLoadError) as raised:
        make_manager(["koomsg_test_misspelled"], entry_points=False)
    assert "koomsg_transport" in str(raised.value)


def message_event(message_id: str) -> MessageEvent:
    return MessageEvent(
        kind="status",
        enterprise_id="ent_1",
        message_id=message_id,
        task_id=None,
        status="DELIVERED",
        occurred_at=datetime.now(UTC),
        detail={},
    )


async def test_events_reach_every_observer_and_a_failing_one_is_not_felt() -> None:
    manager = make_manager(entry_points=False)
    seen: list[tuple[str, str]] = []

    class Sync:
        @hookimpl
        def koomsg_message_event(self, event: MessageEvent) -> None:
            seen.append(("sync", event.message_id))

    class Broken:
        @hookimpl
        def koomsg_message_event(self, event: MessageEvent) -> None:
            raise RuntimeError("an observer that fails must not stop the others")

    class Async:
        @hookimpl
        async def koomsg_message_event(self, event: MessageEvent) -> None:
            await asyncio.sleep(0)
            seen.append(("async", event.message_id))

    for observer in (Sync(), Broken(), Async()):
        manager.register(observer)
    emit_events(manager, [message_event("msg_1"), message_event("msg_2")])
    assert seen == []  # off the caller's path
    for _ in range(50):
        if len(seen) == 4:
            break
        await asyncio.sleep(0.01)
    assert seen == [("sync", "msg_1"), ("async", "msg_1"), ("sync", "msg_2"), ("async", "msg_2")]


async def test_no_observers_or_no_events_start_nothing() -> None:
    manager = make_manager(entry_points=False)
    before = len(asyncio.all_tasks())
    emit_events(manager, [message_event("msg_1")])
    assert len(asyncio.all_tasks()) == before
