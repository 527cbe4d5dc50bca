"""`subscriptions/listen` (MCP 2026-07-28) with the official Python SDK's `Client.listen()`.

The SDK's `Client` in its default mode speaks 2026-07-28 to the gateway; `listen()` opens a
listen stream and waits for the acknowledgement, whose honoured filter it exposes. A tools
list change of a handshake-era stdio upstream (`announce`) arrives as a typed event, and the
gateway's SIGTERM ends the stream gracefully (the loop ends, no `SubscriptionLost`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp.shared.subscriptions import ToolsListChanged

from support import connect, stdio_upstream, text_of

pytestmark = pytest.mark.anyio

STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"
WAIT_S = 15


@pytest.mark.parametrize("share", ["session", "shared"])
async def test_a_tools_change_reaches_the_listener_and_sigterm_ends_it_gracefully(start_gateway, share):
    gw = start_gateway(stdio_upstream("fixture", sys.executable, [STDIO_SERVER], share=share))
    async with connect(gw.url, "streamable", mode="auto") as client:
        async with client.listen(tools_list_changed=True, prompts_list_changed=True) as sub:
            assert sub.honored.tools_list_changed and sub.honored.prompts_list_changed
            assert not sub.honored.resource_subscriptions
            assert text_of(await client.call_tool("announce", {})) == "announced"
            with anyio.fail_after(WAIT_S):
                event = await anext(sub)
            assert isinstance(event, ToolsListChanged), event
            assert await anyio.to_thread.run_sync(gw.stop) == 0
            with anyio.fail_after(WAIT_S):
                rest = [e async for e in sub]
            assert rest == [], "the gateway's end is graceful: the loop just ends"
