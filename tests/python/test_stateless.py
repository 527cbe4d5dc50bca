"""Stateless requests (MCP 2026-07-28) on /mcp, from real clients and raw HTTP.

The official Python SDK's `Client` in its default mode ("auto") probes `server/discover`
first; the gateway answers it, so the client speaks 2026-07-28, one stateless request at a
time, and no session is opened. Its requests reach the built-in tools and a handshake-era
stdio upstream (server-everything) through the modern hub. Closing a stateless request's
stream cancels it at the upstream at once.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2 as httpx
import pytest

from support import Recorder, connect, session_counts, stdio_upstream, text_of, wait_shared_upstreams_up

pytestmark = pytest.mark.anyio

STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"
NO_GRACE = "[sessions]\nlegacy_grace_secs = 0\n\n"
V2026 = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": V2026,
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition, 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    line_start = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


async def metrics(base_url: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base_url}/metrics")).text


@pytest.mark.parametrize("share", ["session", "shared"])
async def test_the_default_client_takes_the_stateless_path_to_builtin_and_stdio_upstreams(
    start_gateway, everything_js, share
):
    gw = start_gateway(
        NO_GRACE
        + '[upstreams.builtin]\nkind = "builtin"\n\n'
        + stdio_upstream("everything", "node", [everything_js, "stdio"], share=share)
    )
    if share == "shared":
        await wait_shared_upstreams_up(gw, "everything")
    rec = Recorder()
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable", mode="auto", recorder=rec) as client:
            assert client.protocol_version == V2026, "the probe was answered: the client speaks 2026-07-28"
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"echo", "everything_echo", "add"} <= tools, sorted(tools)
            assert text_of(await client.call_tool("echo", {"text": "built in"})) == "built in"
            assert text_of(await client.call_tool("everything_echo", {"message": "hi"})) == "Echo: hi"
            assert await session_counts(gw.url) == (0, 0), "no session on the stateless path"
        assert rec.session_id is None, rec.exchanges
        assert rec.requests("DELETE") == [], "no session to end"
    text = await metrics(gw.url)
    assert metric(text, "mcpgw_messages_total", transport="stateless", method="tools/call") == 2, text
    assert metric(text, "mcpgw_messages_total", transport="stateless", method="server/discover") >= 1, text
    assert metric(text, "mcpgw_sessions_created_total", transport="streamable") == 0, text


def post_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": V2026,
        "mcp-method": method,
    }
    if name is not None:
        headers["mcp-name"] = name
    return headers


async def test_log_messages_reach_a_stateless_call_only_at_the_level_it_names(start_gateway):
    gw = start_gateway(NO_GRACE + stdio_upstream("fixture", sys.executable, [STDIO_SERVER], share="shared"))
    await wait_shared_upstreams_up(gw, "fixture")

    async def call(meta: dict) -> list[dict]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "log_twice", "arguments": {}, "_meta": meta}}
        async with httpx.AsyncClient(timeout=20) as http:
            reply = await http.post(f"{gw.url}/mcp", json=body, headers=post_headers("tools/call", "log_twice"))
        assert reply.status_code == 200, reply.text
        if reply.headers["content-type"].startswith("application/json"):
            return [reply.json()]
        return [json.loads(line[5:]) for line in reply.text.splitlines() if line.startswith("data:") and line[5:].strip()]

    with anyio.fail_after(30):
        quiet = await call(META)
        assert [m for m in quiet if m.get("method") == "notifications/message"] == [], quiet
        assert quiet[-1]["result"]["content"][0]["text"] == "logged"
        loud = await call({**META, "io.modelcontextprotocol/logLevel": "warning"})
        logs = [m["params"] for m in loud if m.get("method") == "notifications/message"]
        assert [(l["level"], l["data"]) for l in logs] == [("error", "a line at error")], loud
        assert loud[-1]["result"]["content"][0]["text"] == "logged"


@pytest.mark.parametrize("share", ["session", "shared"])
async def test_closing_a_stateless_calls_stream_cancels_it_at_the_upstream_at_once(start_gateway, tmp_path, share):
    cancels = tmp_path / "cancels.jsonl"
    upstream = stdio_upstream(
        "fixture", sys.executable, [STDIO_SERVER], share=share, extra=f'env = {{ MCPGW_TEST_CANCEL_LOG = "{cancels}" }}'
    )
    gw = start_gateway(NO_GRACE + upstream)
    if share == "shared":
        await wait_shared_upstreams_up(gw, "fixture")
    body = json.dumps({
        "jsonrpc": "2.0", "id": "call-1", "method": "tools/call",
        "params": {"name": "hang", "arguments": {"seconds": 30}, "_meta": {**META, "progressToken": "p"}},
    }).encode()
    url = urlsplit(gw.url)
    head = "".join(f"{k}: {v}\r\n" for k, v in post_headers("tools/call", "hang").items())
    request = f"POST /mcp HTTP/1.1\r\nHost: {url.netloc}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(request)
        seen = b""
        # The upstream's progress proves the call is running there.
        while b"notifications/progress" not in seen:
            chunk = sock.recv(65536)
            assert chunk, f"the stream ended early: {seen!r}"
            seen += chunk
        assert b"x-accel-buffering: no" in seen.lower(), seen
        closed_at = time.time()
    # The close is the cancellation: wait (boundedly) for the upstream to record it.
    deadline = time.monotonic() + 20
    while not (cancels.exists() and cancels.read_text().strip()):
        assert time.monotonic() < deadline, "the upstream never saw a cancellation"
        await anyio.sleep(0.01)
    records = [json.loads(line) for line in cancels.read_text().splitlines()]
    assert len(records) == 1, records
    delay = records[0]["at"] - closed_at
    assert delay < 0.1, f"the upstream saw the cancel {delay * 1000:.0f} ms after the close"
    # Nothing is left in flight, and the gateway keeps serving stateless requests.
    async with httpx.AsyncClient(timeout=20) as http:
        listed = await http.post(
            f"{gw.url}/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}},
            headers=post_headers("tools/list"),
        )
    assert listed.status_code == 200 and "hang" in listed.text, listed.text


async def test_an_upstream_needing_an_undeclared_capability_gets_the_call_refused_with_32021(start_gateway, tmp_path):
    """The stdio fixture's `sample_now` asks its client to sample the moment it is called.
    A stateless caller that did not declare `sampling` gets 400 with -32021 naming it, and
    the upstream's call is cancelled; one that declared it gets the question as an
    input-required result (test_mrtr.py), never as a request on its stream."""
    cancels = tmp_path / "cancels.jsonl"
    upstream = stdio_upstream(
        "fixture", sys.executable, [STDIO_SERVER], share="shared", extra=f'env = {{ MCPGW_TEST_CANCEL_LOG = "{cancels}" }}'
    )
    gw = start_gateway(NO_GRACE + upstream)
    await wait_shared_upstreams_up(gw, "fixture")

    def call(id_: int, capabilities: dict) -> dict:
        meta = {**META, "io.modelcontextprotocol/clientCapabilities": capabilities}
        return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
                "params": {"name": "sample_now", "arguments": {"prompt": "hi"}, "_meta": meta}}

    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            refused = await http.post(f"{gw.url}/mcp", json=call(1, {}), headers=post_headers("tools/call", "sample_now"))
            assert refused.status_code == 400, refused.text
            error = refused.json()
            assert error["id"] == 1 and error["error"]["code"] == -32021, error
            assert error["error"]["data"]["requiredCapabilities"] == {"sampling": {}}, error
            while not (cancels.exists() and cancels.read_text().strip()):
                await anyio.sleep(0.01)
            declared = await http.post(
                f"{gw.url}/mcp", json=call(2, {"sampling": {}}), headers=post_headers("tools/call", "sample_now")
            )
    assert declared.status_code == 200, declared.text
    answer = declared.json()
    assert "method" not in answer, "no request on a request's stream"
    assert answer["result"]["resultType"] == "input_required", answer


async def test_an_untied_roots_request_of_a_caller_without_roots_gets_no_roots_and_the_call_goes_on(
    start_gateway, tmp_path
):
    """A stdio upstream's `roots/list` is tied to no request: during a stateless call it may
    be the upstream's own (server-everything asks right after `initialize`, which once
    raced a call and failed it with -32021). A caller that declared no roots has none: the
    upstream gets an empty list and the call completes. The stdio fixture's `roots_now`
    asks the moment it is called, so the request always lands during the call."""
    upstream = stdio_upstream("fixture", sys.executable, [STDIO_SERVER], share="shared")
    gw = start_gateway(NO_GRACE + upstream)
    await wait_shared_upstreams_up(gw, "fixture")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "roots_now", "arguments": {}, "_meta": META}}
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            reply = await http.post(f"{gw.url}/mcp", json=body, headers=post_headers("tools/call", "roots_now"))
    assert reply.status_code == 200, reply.text
    answer = reply.json() if reply.headers["content-type"].startswith("application/json") else [
        json.loads(line[5:]) for line in reply.text.splitlines() if line.startswith("data:") and line[5:].strip()
    ][-1]
    assert answer["id"] == 1 and answer["result"]["resultType"] == "complete", answer
    assert answer["result"]["content"][0]["text"] == "", "no roots: the caller declared none"
