"""Parked sessions: a session quiet for `park_after_secs` lets its MCP server go (the
gateway's memory for an idle session) and gets a new one, from its recorded handshake, on
its next message. The client notices nothing: what upstreams announce while it is parked
still reaches it, and its next call (even one that makes the upstream ask the client for
sampling) is answered as if the server had never left."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import types

from support import TRANSPORTS, Answers, connect, healthz, stdio_upstream, text_of, wait_shared_upstreams_up

pytestmark = pytest.mark.anyio

STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"


def config() -> str:
    return (
        "[sessions]\npark_after_secs = 1\nlegacy_grace_secs = 0\n\n"
        '[upstreams.builtin]\nkind = "builtin"\n\n'
        + stdio_upstream("tiny", sys.executable, [STDIO_SERVER], share="shared")
    )


async def wait_parked(base_url: str, n: int, *, within: float = 10.0) -> None:
    """Poll /healthz until `n` sessions are parked; fail after `within` s."""
    last = None
    with anyio.fail_after(within):
        while (last := (await healthz(base_url))["sessions"]["parked"]) != n:
            await anyio.sleep(0.05)


class Listener(Answers):
    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.list_changed = anyio.Event()

    async def messages(self, message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.list_changed.set()
        await super().messages(message)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_parked_session_hears_upstreams_and_wakes(start_gateway, transport):
    gw = start_gateway(config())
    await wait_shared_upstreams_up(gw, "tiny")
    listener = Listener("parked")
    with anyio.fail_after(60):
        async with connect(gw.url, transport, **listener.options()) as client:
            assert text_of(await client.call_tool("echo", {"text": "before"})) == "before"
            await wait_parked(gw.url, 1)

            # Another session makes the shared upstream announce a list change: the parked
            # session's client hears it, and stays parked.
            async with connect(gw.url, "streamable") as other:
                assert text_of(await other.call_tool("announce", {})) == "announced"
            with anyio.fail_after(10):
                await listener.list_changed.wait()
            await wait_parked(gw.url, 1)

            # Its next call wakes it; the upstream's sampling request during that call is
            # routed to it and answered.
            assert text_of(await client.call_tool("sample_now", {"prompt": "awake?"})) == listener.sampled
            assert listener.sampling_prompts == ["awake?"]
            assert text_of(await client.call_tool("echo", {"text": "after"})) == "after"
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"echo", "announce", "sample_now"} <= tools, tools

            # And it parks again once quiet.
            await wait_parked(gw.url, 1)
            assert text_of(await client.call_tool("echo", {"text": "again"})) == "again"
