"""A tap below the official Python SDK client, for the cluster scripts: every HTTP exchange
it makes, with the JSON-RPC request ids it sent and what came back (each SSE event's id and
message, or the JSON body), so that a test can check the invariants on all a client
received (tests/src/cluster_client.rs, `assert_client_invariants`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2


class Tap(httpx2.AsyncBaseTransport):
    """Records every exchange as the bytes pass, with the instance that answered it when the
    load balancer names it (`X-Mcpgw-Node`, tests/src/cluster.rs). `on_change` is called when
    a response arrives, on each event, and when a response's body ends (`ended`), for a
    script that waits on them."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[dict[str, Any]] = []
        self.on_change = on_change

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent: list[Any] = []
        if request.method == "POST":
            body = json.loads(request.content or b"null")
            for message in body if isinstance(body, list) else [body]:
                if isinstance(message, dict) and "method" in message and "id" in message:
                    sent.append(message["id"])
        exchange: dict[str, Any] = {
            "method": request.method,
            "session": request.headers.get("mcp-session-id"),
            "last_event_id": request.headers.get("last-event-id"),
            "sent": sent,
            "events": [],
            "json": None,
            "status": None,
            "node": None,
            "ended": False,
        }
        self.exchanges.append(exchange)
        response = await self.inner.handle_async_request(request)
        exchange["status"] = response.status_code
        exchange["node"] = response.headers.get("x-mcpgw-node")
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        response.stream = Recording(response.stream, exchange, kind, self.on_change)
        self.on_change()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Recording(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, exchange: dict[str, Any], kind: str, on_change: Callable[[], None]) -> None:
        self.inner, self.exchange, self.kind, self.buffer = inner, exchange, kind, b""
        self.on_change = on_change

    async def __aiter__(self):
        try:
            async for chunk in self.inner:
                self.buffer += chunk
                if self.kind == "text/event-stream":
                    self.events()
                yield chunk
            if self.kind == "application/json" and self.buffer:
                self.exchange["json"] = json.loads(self.buffer)
        finally:
            self.end()

    def events(self) -> None:
        # mcpgw ends its lines with LF.
        while b"\n\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\n\n", 1)
            event_id, data = None, []
            for line in raw.decode().split("\n"):
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            text = "\n".join(data)
            if event_id is not None or text:
                self.exchange["events"].append({"id": event_id, "message": json.loads(text) if text else None})
                self.on_change()

    def end(self) -> None:
        if not self.exchange["ended"]:
            self.exchange["ended"] = True
            self.on_change()

    async def aclose(self) -> None:
        self.end()
        await self.inner.aclose()
