"""Modern (2026-07-28) upstreams behind mcpgw, reached by the official Python SDK in a
handshake-era session (`mode="legacy"`: `initialize`, then every request on the session), and
in its default mode (`auto`: stateless 2026-07-28 requests through mcpgw's modern hub).

Two upstreams, both `kind = "http"`: the modern-only TypeScript SDK 2.x server
(`tests/ts/fixtures/modern-server.mjs`, `legacy: 'reject'`: it refuses `initialize`), `era` at its
default (`auto`: the session's `initialize` is refused, so mcpgw asks `server/discover`), and
`tests/fixture` in its dual-era HTTP mode (`mcpgw-fixture --http`) with `era = "modern"` (with
`auto` a session would reach it in the session's own era, see the last test). Their multi round-trip tools
answer with an `InputRequiredResult`, which a 2025 session cannot be given: mcpgw asks the
session's client with ordinary sampling and elicitation requests and retries the call with the
answers (and the upstream's `requestState`) until the upstream has its result. A session's
`logging/setLevel` (a method 2026-07-28 removed) becomes the `logLevel` of its later requests.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from support import connect, text_of, toml_string, wait_for_line, wait_for_log

ROOT = Path(__file__).resolve().parents[2]
MODERN_SERVER = ROOT / "tests" / "ts" / "fixtures" / "modern-server.mjs"
URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+/mcp)")
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 20.0


class Upstream:
    """A test upstream process that prints `listening on http://127.0.0.1:PORT/mcp` on stdout."""

    def __init__(self, argv: list[str]) -> None:
        self.stderr: list[str] = []
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read_stdout() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        def read_stderr() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip("\n"))

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            line = None
        match = URL.search(line or "")
        if not match:
            self.proc.kill()
            pytest.fail(f"{argv} did not start within {START_TIMEOUT_S} s:\n" + "\n".join(self.stderr))
        self.url = match.group(1)

    async def logged(self, line: str, *, within: float = CALL_TIMEOUT_S) -> None:
        """Wait until the process has written `line` to its stderr: a reader thread takes it in,
        so what the process wrote before an answer may not be in `stderr` yet when it comes."""
        await wait_for_line(self.stderr, f"^{re.escape(line)}$", within=within, what="upstream stderr")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: the modern-only upstream is the TypeScript SDK 2.x server", pytrace=False)
    fixture_bin = Path(os.environ.get("MCPGW_FIXTURE_BIN") or ROOT / "target" / "debug" / "mcpgw-fixture")
    if not fixture_bin.exists():
        pytest.fail(f"{fixture_bin} is missing: cargo build -p mcpgw-tests --bin mcpgw-fixture", pytrace=False)
    modern = Upstream([node, str(MODERN_SERVER)])
    try:
        fixture = Upstream([str(fixture_bin), "--http", "127.0.0.1:0"])
    except BaseException:
        modern.stop()
        raise
    try:
        yield modern, fixture
    finally:
        modern.stop()
        fixture.stop()


def config(modern: Upstream, fixture: Upstream) -> str:
    return (
        "[sessions]\nlegacy_grace_secs = 0\n\n"
        f"[upstreams.modern]\nkind = \"http\"\nurl = {toml_string(modern.url)}\n\n"
        f"[upstreams.fixture]\nkind = \"http\"\nurl = {toml_string(fixture.url)}\nera = \"modern\"\n"
    )


class Client2025:
    """The client side: answers sampling and elicitation, records log messages."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.logged = anyio.Event()
        self.updated: list[str] = []
        self.update_seen = anyio.Event()

    async def sampling(self, context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="Paris"), model="test-model"
        )

    async def elicitation(self, context, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(f"elicitation: {params.message}")
        return types.ElicitResult(action="accept", content={"name": "Ada", "color": "teal"})

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)
        self.logged.set()

    async def messages(self, message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
            self.update_seen.set()

    def options(self) -> dict:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "logging_callback": self.logging,
            "message_handler": self.messages,
        }


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_each_client_mode_reaches_modern_upstreams_and_answers_their_input_required_results(
    upstreams, start_gateway, mode
) -> None:
    """`legacy`: a session, the upstreams' `InputRequiredResult`s turned into requests on it.
    `auto` (the SDK's default): stateless 2026-07-28 requests, the `InputRequiredResult`s
    relayed with mcpgw's sealed `requestState` and answered by the SDK itself."""
    modern, fixture = upstreams
    gw = start_gateway(config(modern, fixture))
    me = Client2025()
    async with connect(gw.url, "streamable", mode=mode, **me.options()) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else LATEST_HANDSHAKE_VERSION)
        names = {t.name for t in (await client.list_tools()).tools}
        for name in (
            "modern_echo",
            "modern_progress",
            "modern_ask_name",
            "test_simple_text",
            "test_tool_with_progress",
            "test_input_required_result_multi_round",
        ):
            assert name in names, sorted(names)

        with anyio.fail_after(CALL_TIMEOUT_S):
            assert text_of(await client.call_tool("modern_echo", {"text": "through mcpgw"})) == "through mcpgw"
            assert text_of(await client.call_tool("test_simple_text", {})) == "This is a simple text response for testing."

            # Progress of both, mapped back to this client's token.
            for tool, args, text, expected in (
                ("modern_progress", {"steps": 3}, "done", [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]),
                ("test_tool_with_progress", {}, "Tool with progress executed successfully",
                 [(0.0, 100.0), (50.0, 100.0), (100.0, 100.0)]),
            ):
                progress: list[tuple[float, float | None]] = []
                all_progress = anyio.Event()

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append((value, total))
                    if len(progress) == 3:
                        all_progress.set()

                assert text_of(await client.call_tool(tool, args, progress_callback=on_progress)) == text
                await all_progress.wait()  # the SDK runs progress callbacks as tasks
                assert sorted(progress) == expected, (tool, progress)

            # One elicitation round, keyed `name` by the TypeScript server.
            assert text_of(await client.call_tool("modern_ask_name", {})) == "Hello, Ada!"
            assert len(me.asked) == 1 and me.asked[0].startswith("elicitation"), me.asked

            # Sampling, then two rounds carrying the fixture's requestState between them.
            me.asked.clear()
            result = await client.call_tool("test_input_required_result_sampling", {})
            assert text_of(result) == "Sampling result: Paris", result
            assert me.asked == ["sampling"]
            me.asked.clear()
            result = await client.call_tool("test_input_required_result_multi_round", {})
            assert text_of(result) == "Multi-round complete for Ada who likes teal", result
            assert [a.split(":")[0] for a in me.asked] == ["elicitation", "elicitation"], me.asked

            resource = await client.read_resource("modern://about")
            assert resource.contents[0].text == "mcpgw modern-only fixture"
            resource = await client.read_resource("test://static-text")
            assert resource.contents[0].text == "This is the content of the static text resource."

            # Updates of the modern upstream's resource: mcpgw subscribes on a listen stream of
            # the upstream's, for a session's resources/subscribe as for a stateless listen.
            if mode == "auto":
                async with client.listen(resource_subscriptions=["modern://about"]) as sub:
                    assert list(sub.honored.resource_subscriptions or []) == ["modern://about"], sub.honored
                    assert text_of(await client.call_tool("modern_touch", {})) == "touched"
                    event = await anext(sub)
                    assert isinstance(event, ResourceUpdated) and event.uri == "modern://about", event
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await client.subscribe_resource("modern://about")
                assert text_of(await client.call_tool("modern_touch", {})) == "touched"
                await me.update_seen.wait()
                assert me.updated == ["modern://about"], me.updated

            if mode == "legacy":
                # logging/setLevel is gone in 2026-07-28: the session's level rides its requests'
                # _meta, and the fixture logs only when a request names one.
                await client.set_logging_level("debug")
                assert text_of(await client.call_tool("test_logging_tool", {})) == "Logging evaluated"
                await me.logged.wait()
                assert me.logs[0].data == "Diagnostic trace logging activated", me.logs

    log = gw.log_text()
    assert 'upstream connected upstream=modern kind="http" era="modern"' in log, log
    assert 'upstream connected upstream=fixture kind="http" era="modern"' in log, log
    assert "could not be started" not in log, log


@pytest.mark.anyio
async def test_results_reach_a_session_in_its_eras_shape(upstreams, start_gateway) -> None:
    """rmcp's server strips what 2026-07-28 added (`resultType`) from a result for a 2025 peer:
    the modern upstream's answers carry it, the session's must not."""
    modern, fixture = upstreams
    gw = start_gateway(config(modern, fixture))
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT_S) as http:
        reply = await http.post(f"{gw.url}/mcp", json=init, headers=headers)
        assert reply.status_code == 200, reply.text
        headers["mcp-session-id"] = reply.headers["mcp-session-id"]
        headers["mcp-protocol-version"] = "2025-11-25"
        await http.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "modern_echo", "arguments": {"text": "x"}}}
        reply = await http.post(f"{gw.url}/mcp", json=call, headers=headers)
        assert reply.status_code == 200, reply.text
        if reply.headers["content-type"].startswith("text/event-stream"):
            data = [line[5:] for line in reply.text.splitlines() if line.startswith("data:")]
            body = json.loads(data[-1])
        else:
            body = reply.json()
    assert body["result"]["content"] == [{"type": "text", "text": "x"}], body
    assert "resultType" not in body["result"], body


@pytest.mark.anyio
async def test_a_call_refused_for_its_headers_is_retried_once_with_the_tools_listed_again(start_gateway) -> None:
    """A modern upstream whose tool now takes its argument in another `Mcp-Param-*` header
    refuses a call built from the schema mcpgw listed before (-32020); mcpgw lists its tools
    again and sends the call once more, with the header the new schema names.

    The fixture answers its lists as JSON (`--json-replies`): rmcp's Streamable HTTP client
    (3.11) learns a tool's `Mcp-Param-*` headers from a `tools/list` answer read from an event
    stream only when it reads that answer before it sees the stream end; when the stream's end
    comes first it hands the answer on without learning from it, and the retry goes out with
    the old header (seen once in CI; docs/testing.md, "Known client bugs")."""
    fixture_bin = Path(os.environ.get("MCPGW_FIXTURE_BIN") or ROOT / "target" / "debug" / "mcpgw-fixture")
    # Its own fixture: the rename is for good.
    fixture = Upstream([str(fixture_bin), "--http", "127.0.0.1:0", "--json-replies"])
    try:
        gw = start_gateway(
            "[sessions]\nlegacy_grace_secs = 0\n\n"
            f"[upstreams.fixture]\nkind = \"http\"\nurl = {toml_string(fixture.url)}\nera = \"modern\"\n"
        )
        async with connect(gw.url, "streamable", mode="legacy") as client:
            with anyio.fail_after(CALL_TIMEOUT_S):
                assert text_of(await client.call_tool("test_custom_headers", {"region": "eu"})) == "region: eu"
                await client.call_tool("test_rename_header", {})
                assert text_of(await client.call_tool("test_custom_headers", {"region": "ap"})) == "region: ap"
        await fixture.logged("test_custom_headers Mcp-Name=test_custom_headers Mcp-Param-Zone=ap")
        await wait_for_log(gw, re.escape("(-32020); listing its tools again and retrying once"))
    finally:
        fixture.stop()


def stateless_call(id_: int, name: str, **retry) -> tuple[dict[str, str], dict]:
    """A stateless (2026-07-28) `tools/call` of `name` and its headers; `retry` adds
    `inputResponses`/`requestState`."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": id_,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}, "_meta": meta, **retry},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    return headers, body


def answer_of(reply: httpx2.Response) -> dict:
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:] for line in reply.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return reply.json()


@pytest.mark.anyio
async def test_a_modern_upstreams_request_state_reaches_a_stateless_caller_sealed(upstreams, start_gateway) -> None:
    """The fixture's `InputRequiredResult` with its own `requestState` reaches a stateless caller
    with its `inputRequests` as they are and a state sealed by mcpgw in place of the fixture's;
    the retry takes the fixture's state back to it. The sealed state is good once, and one mcpgw
    did not seal (the fixture's own handle, or an altered one) is refused with -32602."""
    modern, fixture = upstreams
    gw = start_gateway(config(modern, fixture))
    name = "test_input_required_result_request_state"
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT_S) as http:

        async def post(id_: int, **retry) -> dict:
            headers, body = stateless_call(id_, name, **retry)
            return answer_of(await http.post(f"{gw.url}/mcp", json=body, headers=headers))

        first = (await post(1))["result"]
        assert first["resultType"] == "input_required", first
        assert list(first["inputRequests"]) == ["confirm"], first  # the fixture's own key
        key = "confirm"
        state = first["requestState"]
        # mcpgw's seal (payload.tag), not the fixture's handle (`state-<n>-<hex>`).
        assert "." in state and not state.startswith("state-"), state
        answers = {key: {"action": "accept", "content": {"ok": True}}}

        forged = await post(2, inputResponses=answers, requestState=state + "-TAMPERED")
        assert forged["error"]["code"] == -32602, forged
        assert "not issued by this gateway" in forged["error"]["message"], forged

        done = (await post(3, inputResponses=answers, requestState=state))["result"]
        assert done["content"][0]["text"] == "state-ok: requestState validated", done

        replayed = await post(4, inputResponses=answers, requestState=state)
        assert replayed["error"]["code"] == -32602, replayed
        assert "used already" in replayed["error"]["message"], replayed


@pytest.mark.anyio
async def test_auto_speaks_each_clients_era_to_an_upstream_that_offers_both(upstreams, start_gateway) -> None:
    """`era = "auto"` and the dual-era fixture: a session's own connection speaks the handshake
    era (its client's: nothing to bridge), the modern hub's connections speak 2026-07-28."""
    _, fixture = upstreams
    gw = start_gateway(f"[upstreams.fixture]\nkind = \"http\"\nurl = {toml_string(fixture.url)}\n")
    async with connect(gw.url, "streamable", mode="legacy") as client:
        with anyio.fail_after(CALL_TIMEOUT_S):
            result = await client.call_tool("test_custom_headers", {"region": "eu"})
            assert text_of(result) == "region: eu"
    await fixture.logged("test_custom_headers Mcp-Name=- Mcp-Param-Region=-")
    await wait_for_log(gw, re.escape('upstream connected upstream=fixture kind="http" era="handshake"'))
    async with httpx2.AsyncClient(timeout=CALL_TIMEOUT_S) as http:
        headers, body = stateless_call(1, "test_custom_headers")
        body["params"]["arguments"] = {"region": "ap"}
        answer = answer_of(await http.post(f"{gw.url}/mcp", json=body, headers=headers))
    assert answer["result"]["content"][0]["text"] == "region: ap", answer
    await fixture.logged("test_custom_headers Mcp-Name=test_custom_headers Mcp-Param-Region=ap")
    await wait_for_log(gw, re.escape('upstream connected upstream=fixture kind="http" era="modern"'))
