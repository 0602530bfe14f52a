"""The whole product over real HTTP, exactly as a frontend drives it.

``koomsg serve`` runs as a subprocess with the embedded default (SQLite,
in-process broker, outbox transport); the only thing the test hosts is the
DNS server the sender domain is verified against. Everything else goes
through the GraphQL API: JSON posts, a multipart upload and a WebSocket
subscription.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from koomsg.testing.dns import LocalDnsServer, zone_for
from tests.e2e.e2e_support import KoomsgProcess, free_port, koomsg_env, run_koomsg, wait_until

pytestmark = pytest.mark.slow

DOMAIN = "shop.example"
RECIPIENTS_CSV = (
    "email,name\n"
    "ann@example.org,Ann\n"
    "bob@example.org,Bob\n"
    "not-an-email,Nobody\n"  # row 4: reported, not sent
    "cy@example.org,Cy\n"
    "dee@example.org,Dee\n"
    "eve@example.org,Eve\n"
)
TASK_FIELDS = """id name status
  counts { total toSend delivered failed rejected }
  importErrors { row value reason }"""


class Client:
    """A frontend's view of the API: GraphQL over HTTP with a bearer key."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.key = key

    def as_(self, key: str) -> Client:
        return Client(self.http, key)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self._headers()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def upload(
        self, query: str, variables: dict[str, Any], files: dict[str, tuple[str, bytes, str]]
    ) -> dict[str, Any]:
        """A GraphQL multipart request as the spec lays it out: ``operations`` (with null
        where each file goes), ``map`` (file part -> variable paths), then the file parts."""
        parts = {str(i): path for i, path in enumerate(files)}
        form = {
            "operations": json.dumps({"query": query, "variables": variables}),
            "map": json.dumps({i: [f"variables.{path}"] for i, path in parts.items()}),
        }
        response = await self.http.post(
            "/graphql",
            data=form,
            files={i: files[path] for i, path in parts.items()},
            headers=self._headers(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
async def served(
    tmp_path: Path, dns_server: LocalDnsServer, spawn: Callable[..., KoomsgProcess]
) -> tuple[KoomsgProcess, str, dict[str, str]]:
    port = free_port()
    env = koomsg_env(
        tmp_path / "var",
        KOOMSG_PUBLIC_URL=f"http://127.0.0.1:{port}",
        KOOMSG_DNS_NAMESERVERS=dns_server.address,
        KOOMSG_DNS_TIMEOUT="2",
        KOOMSG_SPF_INCLUDE="spf.mail.test",
        KOOMSG_DMARC_TARGET="dmarc.mail.test",
        KOOMSG_TRACKING_TARGET="track.mail.test",
        KOOMSG_MX_HOST="mx.mail.test",
        KOOMSG_DISPATCH_INTERVAL="0.2",
        KOOMSG_STATS_ROLLUP_INTERVAL="1",
    )
    server = spawn(["serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        assert server.alive(), f"koomsg serve exited:\n{server.tail()}"
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/healthz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(healthy, within=30, what="koomsg serve to answer /healthz")
    return server, url, env


async def _wait_for_task(client: Client, task_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        edges = (await client(f"{{ sendingTasks {{ edges {{ node {{ {TASK_FIELDS} }} }} }} }}"))[
            "sendingTasks"
        ]["edges"]
        task = next(e["node"] for e in edges if e["node"]["id"] == task_id)
        return task if task["status"] == status else None

    return await wait_until(reached, within=60, interval=0.25, what=f"task {status}")  # type: ignore[no-any-return]


async def _progress_over_websocket(url: str, key: str, task_id: str) -> list[dict[str, Any]]:
    """Every taskProgress payload until the server completes the subscription."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(
        url.replace("http://", "ws://") + "/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    ) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
        query = f"subscription($id: ID!) {{ taskProgress(id: $id) {{ {TASK_FIELDS} }} }}"
        await socket.send(
            json.dumps(
                {
                    "id": "p1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": {"id": task_id}},
                }
            )
        )
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if frame["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))
                continue
            if frame["type"] == "complete":
                return seen
            assert frame["type"] == "next", frame
            assert not frame["payload"].get("errors"), frame
            seen.append(frame["payload"]["data"]["taskProgress"])


async def test_a_frontend_sends_a_campaign_end_to_end(
    served: tuple[KoomsgProcess, str, dict[str, str]], dns_server: LocalDnsServer, tmp_path: Path
) -> None:
    server, url, env = served
    created = run_koomsg(["operator", "create-key", "--name", "e2e"], env)
    assert created.returncode == 0, created.stderr
    operator_key = created.stdout.strip().splitlines()[-1]
    started = datetime.now(UTC)

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        operator = Client(http, operator_key)
        enterprise = (
            await operator(
                "mutation($input: CreateEnterpriseInput!) { createEnterprise(input: $input) { id } }",
                input={"name": "Shop", "realNameVerified": True, "industryClass": "NON_SENSITIVE"},
            )
        )["createEnterprise"]
        root_key = (
            await operator(
                "mutation($id: ID!) { createEnterpriseRootKey(enterpriseId: $id) { secret } }",
                id=enterprise["id"],
            )
        )["createEnterpriseRootKey"]["secret"]
        shop = operator.as_(root_key)
        enabled = await shop("mutation { enableService(acceptTerms: true) { serviceEnabled } }")
        assert enabled["enableService"]["serviceEnabled"] is True

        # The sender domain: publish exactly the records the API asks for, then verify.
        domain = (
            await shop(
                "mutation($input: CreateSenderDomainInput!) { createSenderDomain(input: $input) "
                "{ id status records { type name expectedValue } } }",
                input={"name": DOMAIN},
            )
        )["createSenderDomain"]
        assert {r["type"] for r in domain["records"]} == {"CNAME", "TXT", "MX"}
        dns_server.set_zone(zone_for(domain["records"]))
        verified = (
            await shop(
                "mutation($id: ID!) { verifySenderDomain(id: $id) "
                "{ status records { type name status } } }",
                id=domain["id"],
            )
        )["verifySenderDomain"]
        assert verified["status"] == "VERIFICATION_PASSED", verified
        address = (
            await shop(
                "mutation($input: CreateSenderAddressInput!) "
                "{ createSenderAddress(input: $input) { id address } }",
                input={"domainId": domain["id"], "prefix": "news", "alias": "Shop News"},
            )
        )["createSenderAddress"]
        assert address["address"] == f"news@{DOMAIN}"

        template = (
            await shop(
                "mutation($input: CreateTemplateInput!) "
                "{ createTemplate(input: $input) { id status params supportUnsubscribe } }",
                input={
                    "name": "Welcome",
                    "bodyType": "RICH_TEXT",
                    "body": "<p>Hello {{name}}, welcome to the shop.</p>",
                    "supportUnsubscribe": True,
                },
            )
        )["createTemplate"]
        assert template["status"] == "APPROVED" and template["params"] == ["name"]
        preview = (
            await shop(
                "query($id: ID!, $params: JSON, $subject: String) "
                "{ previewTemplate(id: $id, params: $params, subject: $subject) "
                "{ subject html text } }",
                id=template["id"],
                params={"name": "Ann"},
                subject="Hi {{name}}",
            )
        )["previewTemplate"]
        assert preview["subject"] == "Hi Ann"
        assert "Hello Ann" in preview["html"] and "Hello Ann" in preview["text"]

        # The campaign: a recipient file with one bad row, imported in the background.
        create_task = (
            "mutation($input: CreateSendingTaskInput!) "
            f"{{ createSendingTask(input: $input) {{ {TASK_FIELDS} }} }}"
        )

        def task_input(name: str) -> dict[str, Any]:
            return {
                "name": name,
                "subject": "Hi {{name}}",
                "templateId": template["id"],
                "senderAddressId": address["id"],
                "sendingType": "NOW",
                "recipientFile": None,
            }

        task = (
            await shop.upload(
                create_task,
                {"input": task_input("Spring sale")},
                {"input.recipientFile": ("recipients.csv", RECIPIENTS_CSV.encode(), "text/csv")},
            )
        )["createSendingTask"]
        done = await _wait_for_task(shop, task["id"], "COMPLETED")
        assert done["counts"] == {
            "total": 5,
            "toSend": 0,
            "delivered": 5,
            "failed": 0,
            "rejected": 0,
        }
        assert [(e["row"], e["value"]) for e in done["importErrors"]] == [(4, "not-an-email")]
        assert done["importErrors"][0]["reason"]

        window = {
            "createdFrom": (started - timedelta(minutes=1)).isoformat(),
            "createdTo": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
            "taskId": task["id"],
        }
        details = (
            await shop(
                "query($filter: SendingDetailFilter!) { sendingDetails(filter: $filter) "
                "{ totalCount edges { node { messageId status recipient subject sender "
                "receivedAt sendMethod } } } }",
                filter=window,
            )
        )["sendingDetails"]
        nodes = [edge["node"] for edge in details["edges"]]
        assert details["totalCount"] == 5
        assert {n["recipient"] for n in nodes} == {
            f"{who}@example.org" for who in ("ann", "bob", "cy", "dee", "eve")
        }
        for node in nodes:
            assert node["status"] == "DELIVERED" and node["receivedAt"], node
            assert node["sendMethod"] == "CONSOLE" and node["sender"] == address["address"]
        assert {n["subject"] for n in nodes} == {"Hi Ann", "Hi Bob", "Hi Cy", "Hi Dee", "Hi Eve"}
        outbox = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
        assert len(outbox) == 5, outbox

        # Statistics come from the hourly rollup, which runs every second here.
        hour = started.replace(minute=0, second=0, microsecond=0)
        report_query = (
            "query($from: DateTime!, $to: DateTime!, $task: ID) { statisticsReport("
            "reportType: HOURLY, from: $from, to: $to, taskId: $task) "
            "{ time sent successful failed toSend rejected deliveryRate } }"
        )

        async def rolled_up() -> list[dict[str, Any]] | None:
            rows = (
                await shop(
                    report_query,
                    **{
                        "from": hour.isoformat(),
                        "to": (hour + timedelta(hours=2)).isoformat(),
                        "task": task["id"],
                    },
                )
            )["statisticsReport"]
            return rows if sum(r["successful"] for r in rows) == 5 else None

        rows = await wait_until(rolled_up, within=30, interval=0.5, what="the hourly rollup")
        assert sum(r["sent"] for r in rows) == 5
        assert sum(r["failed"] + r["toSend"] + r["rejected"] for r in rows) == 0
        assert [r["deliveryRate"] for r in rows if r["sent"]] == [1.0]

        # A transactional send, repeated with the same idempotency key: one message.
        send = (
            "mutation($input: SendEmailInput!) { sendEmail(input: $input) "
            "{ messageId sendMethod recipient } }"
        )
        email = {
            "templateId": template["id"],
            "senderAddressId": address["id"],
            "subject": "Your order, {{name}}",
            "to": "buyer@example.org",
            "params": {"name": "Buyer"},
            "idempotencyKey": "order-0001",
        }
        first = (await shop(send, input=email))["sendEmail"]
        again = (await shop(send, input=email))["sendEmail"]
        assert first["sendMethod"] == "API"
        assert again["messageId"] == first["messageId"]

        # Live progress of a second task over a real WebSocket.
        second = (
            await shop.upload(
                create_task,
                {"input": task_input("Follow-up")},
                {
                    "input.recipientFile": (
                        "follow-up.csv",
                        b"email,name\nann@example.org,Ann\nbob@example.org,Bob\n",
                        "text/csv",
                    )
                },
            )
        )["createSendingTask"]
        pushed = await _progress_over_websocket(url, root_key, second["id"])
        assert pushed, "the subscription ended without a single update"
        assert all(p["id"] == second["id"] for p in pushed)
        assert pushed[-1]["status"] == "COMPLETED"
        assert pushed[-1]["counts"]["delivered"] == 2 and pushed[-1]["counts"]["toSend"] == 0

    assert server.terminate() == 0, server.tail()
