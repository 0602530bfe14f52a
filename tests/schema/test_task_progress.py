"""taskProgress over a real WebSocket (graphql-transport-ws) against uvicorn on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
import websockets
from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.notices import changed
from koomsg.runtime import Runtime
from koomsg.schema.tasks import subscriptions
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup
from koomsg.web.app import create_app

PROGRESS = """subscription($id: ID!) { taskProgress(id: $id) {
  id status counts { total toSend delivered failed rejected } } }"""
CREATE = (
    "mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id status } }"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def ws_url(runtime: Runtime) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await serving


async def subscribe(url: str, key: str | None, task_id: str, query: str = PROGRESS) -> Any:
    socket_ = await websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    payload = {"Authorization": f"Bearer {key}"} if key else {}
    await socket_.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket_.recv())["type"] == "connection_ack"
    await start(socket_, "1", task_id, query)
    return socket_


async def start(socket_: Any, operation: str, task_id: str, query: str = PROGRESS) -> None:
    message = {"query": query, "variables": {"id": task_id}}
    await socket_.send(json.dumps({"id": operation, "type": "subscribe", "payload": message}))


async def next_message(socket_: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket_.recv(), timeout=5))  # type: ignore[no-any-return]


def error_code(message: dict[str, Any]) -> str:
    # Errors raised in the resolver arrive as a "next" with errors (or an "error" frame).
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    return str(errors[0]["extensions"]["code"])


@pytest.fixture(autouse=True)
def no_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams here move on change notices alone: the safety-net re-read never comes."""
    monkeypatch.setattr(subscriptions, "RECHECK_SECONDS", 3600.0)


async def set_status(runtime: Runtime, message_id: str, status: MessageStatus) -> None:
    """What recording an outcome does: the row changes, the task is announced on commit."""
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=status, finished_at=utcnow())  # type: ignore[arg-type]
        )
        task_id = (await session.get(Message, message_id)).task_id  # type: ignore[union-attr]
        changed(session, str(task_id))


async def test_progress_until_the_task_completes(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, ws_url: str
) -> None:
    setup = await sendable_setup(api, runtime)
    variables = {
        "input": {
            "name": "Live",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipients": ["a@example.org", "b@example.org"],
        }
    }
    task = (await api(CREATE, variables)).ok()["createSendingTask"]
    async with runtime.db.session() as session:
        from sqlalchemy import select

        ids = sorted(
            (
                await session.execute(select(Message.id).where(Message.task_id == task["id"]))
            ).scalars()
        )  # type: ignore[arg-type]
    socket_ = await subscribe(ws_url, enterprise.key, task["id"])
    try:
        first = await next_message(socket_)
        assert first["type"] == "next", first
        assert first["payload"]["data"]["taskProgress"]["counts"] == {
            "total": 2,
            "toSend": 2,
            "delivered": 0,
            "failed": 0,
            "rejected": 0,
        }
        await set_status(runtime, ids[0], MessageStatus.DELIVERED)
        second = (await next_message(socket_))["payload"]["data"]["taskProgress"]
        assert second["status"] == "SENDING" and second["counts"]["delivered"] == 1
        await set_status(runtime, ids[1], MessageStatus.FAILED)
        async with runtime.db.transaction() as session:
            assert await complete_task_if_done(session, task_id=task["id"], now=utcnow())
        pushes = []
        while True:
            message = await next_message(socket_)
            if message["type"] == "complete":
                break
            pushes.append(message["payload"]["data"]["taskProgress"])
        assert pushes[-1]["status"] == "COMPLETED"
        assert pushes[-1]["counts"] == {
            "total": 2,
            "toSend": 0,
            "delivered": 1,
            "failed": 1,
            "rejected": 0,
        }
    finally:
        await socket_.close()


async def test_progress_needs_a_key_and_the_callers_task(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, ws_url: str, make_enterprise: Any
) -> None:
    socket_ = await subscribe(ws_url, None, "tsk_00000000000000000000000000")
    try:
        message = await next_message(socket_)
        assert error_code(message) == "UNAUTHENTICATED"
    finally:
        await socket_.close()
    other = await make_enterprise("Other")
    socket_ = await subscribe(ws_url, other.key, "tsk_00000000000000000000000000")
    try:
        message = await next_message(socket_)
        assert error_code(message) == "NOT_FOUND"
    finally:
        await socket_.close()


async def test_progress_stops_when_the_key_is_revoked(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, ws_url: str
) -> None:
    setup = await sendable_setup(api, runtime)
    variables = {
        "input": {
            "name": "Live",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipients": ["a@example.org"],
        }
    }
    task = (await api(CREATE, variables)).ok()["createSendingTask"]
    second_root = (
        await api(
            "mutation($id: ID!) { createEnterpriseRootKey(enterpriseId: $id) { keyId secret } }",
            {"id": enterprise.id},
            key=api.keys["operator"],
        )
    ).ok()["createEnterpriseRootKey"]
    socket_ = await subscribe(ws_url, second_root["secret"], task["id"])
    try:
        assert (await next_message(socket_))["type"] == "next"
        revoke = "mutation($id: ID!) { revokeAccessKey(id: $id) { revokedAt } }"
        (await api(revoke, {"id": second_root["keyId"]})).ok()
        assert error_code(await next_message(socket_)) == "UNAUTHENTICATED"
    finally:
        await socket_.close()


async def test_at_most_n_streams_per_connection(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, ws_url: str
) -> None:
    setup = await sendable_setup(api, runtime)
    variables = {
        "input": {
            "name": "Live",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipients": ["a@example.org"],
        }
    }
    task = (await api(CREATE, variables)).ok()["createSendingTask"]
    limit = runtime.settings.max_subscriptions_per_connection
    socket_ = await subscribe(ws_url, enterprise.key, task["id"])
    try:
        assert (await next_message(socket_))["id"] == "1"
        for number in range(2, limit + 1):
            await start(socket_, str(number), task["id"])
            assert (await next_message(socket_))["type"] == "next"
        await start(socket_, "over", task["id"])
        refused = await next_message(socket_)
        assert refused["id"] == "over"
        assert error_code(refused) == "BAD_USER_INPUT"
        assert "KOOMSG_MAX_SUBSCRIPTIONS_PER_CONNECTION" in str(refused["payload"])
        # A stream that ends gives its slot back.
        await socket_.send(json.dumps({"id": "2", "type": "complete"}))
        await start(socket_, "again", task["id"])
        while (message := await next_message(socket_))["id"] != "again":
            pass
        assert message["type"] == "next"
    finally:
        await socket_.close()
