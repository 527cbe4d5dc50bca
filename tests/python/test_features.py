"""The built-in tools, resource and prompt, through the official Python SDK client, over
both transports (Streamable HTTP on /mcp, legacy HTTP+SSE on /sse)."""

from __future__ import annotations

import re

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from support import TRANSPORTS, Recorder, connect, session_counts, text_of, wait_for_counts

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.gateway_config("[sessions]\nlegacy_grace_secs = 0\n"),
]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_feature_tour(gateway, transport, mode):
    """initialize, tools (echo, add, sleep with progress), resource, prompt, clean close."""
    rec = Recorder()
    with anyio.fail_after(30):
        async with connect(gateway.url, transport, mode=mode, recorder=rec) as client:
            # -- handshake, or the probe
            assert client.server_info is not None and client.server_info.name == "mcpgw"
            stateless = mode == "auto" and transport == "streamable"
            if stateless:
                # On /mcp the gateway answers the `auto` probe (`server/discover`): the SDK
                # speaks 2026-07-28, one stateless request at a time, and opens no session.
                assert client.protocol_version == "2026-07-28"
                assert rec.session_id is None, rec.exchanges
                assert await session_counts(gateway.url) == (0, 0)
            elif mode == "legacy":
                # The handshake era: the SDK offers its newest handshake version and the
                # gateway accepts it.
                assert client.protocol_version == LATEST_HANDSHAKE_VERSION
                assert client.session.initialize_result is not None
            if stateless:
                pass
            elif transport == "sse":
                assert re.fullmatch(r"[0-9a-f]{32}", rec.session_id), rec.session_id
                assert await session_counts(gateway.url) == (1, 0)
            else:
                assert rec.session_id, "the gateway gave the client no session id"
                assert re.fullmatch(r"[\x21-\x7e]+", rec.session_id), rec.session_id
                assert await session_counts(gateway.url) == (0, 1)

            # -- tools
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"echo", "add", "sleep"} <= tools.keys(), sorted(tools)
            assert "text" in tools["echo"].input_schema["properties"]
            assert {"a", "b"} <= tools["add"].input_schema["properties"].keys()
            assert {"ms", "steps"} <= tools["sleep"].input_schema["properties"].keys()

            text = "héllo, wörld ✓ \"quoted\" \n newline"
            assert text_of(await client.call_tool("echo", {"text": text})) == text
            assert text_of(await client.call_tool("add", {"a": 2, "b": 3})) == "5"
            assert text_of(await client.call_tool("add", {"a": 1.5, "b": 2.25})) == "3.75"

            progress: list[tuple[float, float | None, str | None]] = []
            all_progress = anyio.Event()

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append((value, total, message))
                if len(progress) >= 3:
                    all_progress.set()

            result = await client.call_tool("sleep", {"ms": 300, "steps": 3}, progress_callback=on_progress)
            assert not result.is_error, result
            # The SDK runs progress callbacks as tasks: wait for them rather than racing them.
            with anyio.fail_after(5):
                await all_progress.wait()
            assert len(progress) == 3, progress
            assert sorted(p[0] for p in progress) == [1.0, 2.0, 3.0], progress
            assert all(p[1] == 3.0 for p in progress), progress

            # -- resource
            resources = (await client.list_resources()).resources
            assert "mcpgw://about" in [str(r.uri) for r in resources], resources
            read = await client.read_resource("mcpgw://about")
            assert len(read.contents) == 1, read
            about = read.contents[0]
            assert str(about.uri) == "mcpgw://about"
            assert about.mime_type == "text/plain"
            assert "mcpgw" in about.text

            # -- prompt
            prompts = {p.name: p for p in (await client.list_prompts()).prompts}
            assert "greeting" in prompts, sorted(prompts)
            args = {a.name: a for a in prompts["greeting"].arguments or []}
            assert "name" in args and args["name"].required, prompts["greeting"]
            prompt = await client.get_prompt("greeting", {"name": "Ada Lovelace"})
            assert len(prompt.messages) == 1, prompt
            assert prompt.messages[0].role == "user"
            assert prompt.messages[0].content.type == "text"
            assert "Ada Lovelace" in prompt.messages[0].content.text

        # -- clean close: the registry forgets the session
        if stateless:
            assert rec.requests("DELETE") == [], "no session, nothing to end"
        elif transport == "streamable":
            deletes = rec.requests("DELETE")
            assert [(d.status, d.session_header) for d in deletes] == [(200, rec.session_id)], rec.exchanges
        await wait_for_counts(gateway.url, legacy=0, streamable=0)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_errors_are_reported_and_the_session_survives(gateway, transport):
    with anyio.fail_after(30):
        async with connect(gateway.url, transport) as client:
            with pytest.raises(MCPError):
                await client.read_resource("mcpgw://no-such-resource")
            with pytest.raises(MCPError):
                await client.get_prompt("greeting", {})  # `name` is required
            with pytest.raises(MCPError):
                await client.get_prompt("no-such-prompt", {"name": "x"})
            unknown = None
            try:
                unknown = await client.call_tool("no-such-tool", {})
            except MCPError:
                pass  # a JSON-RPC error is a correct answer too
            else:
                assert unknown.is_error, unknown
            # The session still works after every one of those.
            assert text_of(await client.call_tool("echo", {"text": "still here"})) == "still here"
        await wait_for_counts(gateway.url, legacy=0, streamable=0)
