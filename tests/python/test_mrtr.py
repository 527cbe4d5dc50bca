"""Requests that need the client's input (MCP 2026-07-28 MRTR), for a handshake-era upstream.

When a handshake-era upstream asks its client for sampling or elicitation during a stateless
call, the gateway answers the call with an `InputRequiredResult` (the upstream's requests
and a sealed `requestState`) while the upstream call waits; the client's retry, with its
answers, continues that call. The official Python SDK's `Client` in its default mode drives
these rounds itself, answering from its own callbacks. The raw tests check the state's
protections: a forged, replayed, expired or other-credential state, or one for another
request, is refused with -32602 naming why, and the upstream call it names is ended.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import anyio
import httpx2 as httpx
import pytest
from mcp import types

from support import Answers, all_text, connect, sampling_result, session_counts, stdio_upstream, text_of
from support import wait_shared_upstreams_up

pytestmark = pytest.mark.anyio

STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"
NO_GRACE = "[sessions]\nlegacy_grace_secs = 0\n\n"
V2026 = "2026-07-28"
SAMPLING = {"sampling": {}}


def call(id_: int, *, prompt: str = "hi", capabilities: dict | None = None, **retry) -> dict:
    """A stateless `tools/call sample_now`; `retry` adds `inputResponses`/`requestState`."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": SAMPLING if capabilities is None else capabilities,
    }
    params = {"name": "sample_now", "arguments": {"prompt": prompt}, "_meta": meta, **retry}
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def headers(token: str | None = None) -> dict[str, str]:
    h = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": V2026,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "sample_now",
    }
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def answer_of(response: httpx.Response) -> dict:
    """The JSON-RPC answer of a stateless POST (JSON, or the last event of a stream)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


def sampled(text: str) -> dict:
    return {"role": "assistant", "content": {"type": "text", "text": text}, "model": "raw-model"}


async def waiting(http: httpx.AsyncClient, base_url: str) -> int:
    """`mcpgw_stateless_calls_waiting_for_input` from /metrics."""
    text = (await http.get(f"{base_url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("mcpgw_stateless_calls_waiting_for_input "):
            return int(float(line.split()[-1]))
    raise AssertionError(f"no mcpgw_stateless_calls_waiting_for_input in {text}")


class Fixture:
    """The stdio fixture behind a gateway, recording the cancels it gets."""

    def __init__(self, start_gateway, tmp_path: Path, extra: str = "") -> None:
        self.cancels = tmp_path / "cancels.jsonl"
        upstream = stdio_upstream(
            "fixture",
            sys.executable,
            [STDIO_SERVER],
            share="shared",
            extra=f'env = {{ MCPGW_TEST_CANCEL_LOG = "{self.cancels}" }}',
        )
        self.gw = start_gateway(extra + NO_GRACE + upstream)

    def cancelled(self) -> int:
        return len(self.cancels.read_text().splitlines()) if self.cancels.exists() else 0

    async def wait_cancelled(self, count: int) -> None:
        with anyio.fail_after(15):
            while self.cancelled() < count:
                await anyio.sleep(0.01)

    async def first_round(self, http: httpx.AsyncClient, id_: int, token: str | None = None, **kw) -> dict:
        """Calls `sample_now` and returns the input-required result."""
        response = await http.post(f"{self.gw.url}/mcp", json=call(id_, **kw), headers=headers(token))
        assert response.status_code == 200, response.text
        answer = answer_of(response)
        assert answer["id"] == id_, answer
        result = answer["result"]
        assert result["resultType"] == "input_required", result
        return result


async def test_the_default_client_answers_sampling_and_elicitation_through_input_required_results(
    start_gateway, everything_js
):
    """server-everything over stdio asks its client to sample and to elicit during a call;
    the SDK's default client (stateless, 2026-07-28) gets each question as an input-required
    result, answers it from its own callback, and the tool's result is built from that
    answer. No session is opened."""
    gw = start_gateway(NO_GRACE + stdio_upstream("everything", "node", [everything_js, "stdio"], share="session"))
    me = Answers("stateless")
    with anyio.fail_after(90):
        async with connect(gw.url, "streamable", mode="auto", **me.options()) as client:
            assert client.protocol_version == V2026
            result = await client.call_tool("trigger-sampling-request", {"prompt": "from me", "maxTokens": 5})
            answer = sampling_result(text_of(result))
            assert answer["content"] == {"type": "text", "text": me.sampled}, answer
            assert answer["model"] == "model-stateless", answer
            assert me.sampling_prompts == ["Resource trigger-sampling-request context: from me"]

            result = await client.call_tool("trigger-elicitation-request", {})
            assert not result.is_error, result
            text = all_text(result)
            assert "User provided the requested information" in text, text
            assert f"- Name: {me.name}" in text, text
            assert me.elicitations == ["Please provide inputs for the following fields:"]
            assert await session_counts(gw.url) == (0, 0), "no session on the stateless path"


async def test_the_default_client_answers_a_roots_request_through_an_input_required_result(start_gateway, tmp_path):
    """The stdio fixture's `roots_now` asks its client for its roots the moment it is called;
    the SDK's default client answers from its own roots callback, and the tool returns them."""
    f = Fixture(start_gateway, tmp_path)
    await wait_shared_upstreams_up(f.gw, "fixture")
    asked = []

    async def roots(context) -> types.ListRootsResult:
        asked.append(True)
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/a"), types.Root(uri="file:///work/b")])

    with anyio.fail_after(60):
        async with connect(f.gw.url, "streamable", mode="auto", list_roots_callback=roots) as client:
            assert client.protocol_version == V2026
            result = await client.call_tool("roots_now", {})
            assert text_of(result) == "file:///work/a file:///work/b", result
    assert asked == [True]
    assert f.cancelled() == 0


async def test_the_default_client_answers_sampling_for_a_prompt_through_an_input_required_result(
    start_gateway, tmp_path
):
    """`prompts/get` may need the client's input too: the stdio fixture's `sample_prompt`
    samples before it answers, and the prompt is the client's own answer."""
    f = Fixture(start_gateway, tmp_path)
    await wait_shared_upstreams_up(f.gw, "fixture")
    me = Answers("prompted")
    with anyio.fail_after(60):
        async with connect(f.gw.url, "streamable", mode="auto", **me.options()) as client:
            assert client.protocol_version == V2026
            prompt = await client.get_prompt("sample_prompt", {"topic": "gateways"})
            assert prompt.messages[0].content.text == me.sampled, prompt
    assert me.sampling_prompts == ["write about gateways"]


async def test_a_retry_with_the_answer_continues_the_upstream_call_and_its_state_is_used_once(
    start_gateway, tmp_path
):
    f = Fixture(start_gateway, tmp_path)
    await wait_shared_upstreams_up(f.gw, "fixture")
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            first = await f.first_round(http, 1, prompt="what is 2+2?")
            assert await waiting(http, f.gw.url) == 1, "the call is parked"
            [(key, asked)] = first["inputRequests"].items()
            assert asked["method"] == "sampling/createMessage", asked
            assert asked["params"]["messages"][0]["content"]["text"] == "what is 2+2?", asked
            # A retry without the answer (and with one to a key never asked) is asked again.
            unanswered = call(9, prompt="what is 2+2?", inputResponses={"other": {}}, requestState=first["requestState"])
            again = answer_of(await http.post(f"{f.gw.url}/mcp", json=unanswered, headers=headers()))
            assert again["id"] == 9 and again["result"]["resultType"] == "input_required", again
            [(key, asked_again)] = again["result"]["inputRequests"].items()
            assert asked_again == asked, (asked_again, asked)
            state = again["result"]["requestState"]
            assert state != first["requestState"], "a fresh state for each round"
            retry = call(2, prompt="what is 2+2?", inputResponses={key: sampled("four")}, requestState=state)
            done = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
            assert done["id"] == 2, done
            assert done["result"]["resultType"] == "complete", done
            assert done["result"]["content"][0]["text"] == "four", done
            assert await waiting(http, f.gw.url) == 0, "the call is over"

            replay = call(3, prompt="what is 2+2?", inputResponses={key: sampled("five")}, requestState=state)
            refused = answer_of(await http.post(f"{f.gw.url}/mcp", json=replay, headers=headers()))
            assert refused["error"]["code"] == -32602, refused
            assert "used already" in refused["error"]["message"], refused
    assert f.cancelled() == 0, "the completed call was never cancelled"


async def test_a_forged_state_is_refused(start_gateway, tmp_path):
    f = Fixture(start_gateway, tmp_path)
    await wait_shared_upstreams_up(f.gw, "fixture")
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            first = await f.first_round(http, 1)
            key = next(iter(first["inputRequests"]))
            payload, _, tag = first["requestState"].partition(".")
            # One bit of the payload flipped (it names the expiry, the caller, the request).
            flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
            for forged in (f"{flipped}.{tag}", "made-up", ""):
                retry = call(2, inputResponses={key: sampled("x")}, requestState=forged)
                refused = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
                assert refused["error"]["code"] == -32602, (forged, refused)
                assert "not issued by this gateway or was altered" in refused["error"]["message"], refused
            # The real state still works: a forgery names no call it could end.
            retry = call(3, inputResponses={key: sampled("genuine")}, requestState=first["requestState"])
            done = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
            assert done["result"]["content"][0]["text"] == "genuine", done


async def test_a_state_for_another_request_is_refused_and_its_call_ended(start_gateway, tmp_path):
    f = Fixture(start_gateway, tmp_path)
    await wait_shared_upstreams_up(f.gw, "fixture")
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            first = await f.first_round(http, 1, prompt="one thing")
            key = next(iter(first["inputRequests"]))
            retry = call(2, prompt="another", inputResponses={key: sampled("x")}, requestState=first["requestState"])
            refused = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
            assert refused["error"]["code"] == -32602, refused
            assert "issued for another request" in refused["error"]["message"], refused
            await f.wait_cancelled(1)
            # Ended: the right request cannot take it up any more.
            retry = call(3, prompt="one thing", inputResponses={key: sampled("x")}, requestState=first["requestState"])
            gone = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
            assert "used already or is unknown" in gone["error"]["message"], gone


async def test_an_expired_state_is_refused_and_its_call_ended_at_expiry(start_gateway, tmp_path):
    f = Fixture(start_gateway, tmp_path, extra="[server]\nrequest_state_ttl_secs = 1\n\n")
    await wait_shared_upstreams_up(f.gw, "fixture")
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            first = await f.first_round(http, 1)
            key = next(iter(first["inputRequests"]))
            # The upstream call is ended when the state expires, with no retry needed.
            await f.wait_cancelled(1)
            retry = call(2, inputResponses={key: sampled("late")}, requestState=first["requestState"])
            refused = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers()))
            assert refused["error"]["code"] == -32602, refused
            assert "expired" in refused["error"]["message"], refused


async def test_a_state_presented_with_another_credential_is_refused_and_its_call_ended(start_gateway, tmp_path):
    alice, bob = "alice-token-0123456789", "bob-token-0123456789"
    digests = ", ".join(f'"{hashlib.sha256(t.encode()).hexdigest()}"' for t in (alice, bob))
    f = Fixture(start_gateway, tmp_path, extra=f"[auth]\ntoken_sha256 = [{digests}]\n\n")
    await wait_shared_upstreams_up(f.gw, "fixture")
    with anyio.fail_after(30):
        async with httpx.AsyncClient(timeout=20) as http:
            first = await f.first_round(http, 1, token=alice)
            key = next(iter(first["inputRequests"]))
            retry = call(2, inputResponses={key: sampled("bob's")}, requestState=first["requestState"])
            refused = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers(bob)))
            assert refused["error"]["code"] == -32602, refused
            assert "issued to another credential" in refused["error"]["message"], refused
            await f.wait_cancelled(1)
            # A new call of Alice's goes through with Alice's own answer.
            first = await f.first_round(http, 3, token=alice)
            key = next(iter(first["inputRequests"]))
            retry = call(4, inputResponses={key: sampled("alice's")}, requestState=first["requestState"])
            done = answer_of(await http.post(f"{f.gw.url}/mcp", json=retry, headers=headers(alice)))
            assert done["result"]["content"][0]["text"] == "alice's", done


async def test_a_per_session_upstream_sees_the_capabilities_the_stateless_caller_declares(start_gateway, everything_js):
    """server-everything lists its sampling and elicitation tools only to a client that
    declared those capabilities at `initialize`. The hub keeps two connections to a
    per-session upstream, one declaring them and one not, and each stateless request uses
    the one that matches its own `_meta`: a caller without them is not offered those tools."""
    gw = start_gateway(NO_GRACE + stdio_upstream("everything", "node", [everything_js, "stdio"], share="session"))

    async def tools(http: httpx.AsyncClient, capabilities: dict) -> set[str]:
        meta = {
            "io.modelcontextprotocol/protocolVersion": V2026,
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        }
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}
        h = {**headers(), "Mcp-Method": "tools/list"}
        del h["Mcp-Name"]
        response = await http.post(f"{gw.url}/mcp", json=body, headers=h)
        assert response.status_code == 200, response.text
        return {t["name"] for t in answer_of(response)["result"]["tools"]}

    asking = {"trigger-sampling-request", "trigger-elicitation-request"}
    with anyio.fail_after(60):
        async with httpx.AsyncClient(timeout=30) as http:
            plain = await tools(http, {})
            assert "echo" in plain and not plain & asking, sorted(plain)
            capable = await tools(http, {"sampling": {}, "elicitation": {}})
            assert asking <= capable, sorted(capable)
