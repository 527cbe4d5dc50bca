"""Remote upstreams: a Python SDK server (`MCPServer`, formerly FastMCP; see
`fixtures/remote_server.py`) served over Streamable HTTP and over legacy HTTP+SSE, configured
as an `http` and as an `sse` upstream. A client lists and calls its tools through mcpgw,
next to the built-in ones, over both client transports."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
import pytest

from tcp_cutter import TcpCutter
from support import TRANSPORTS, connect, text_of, toml_string, wait_for_counts, wait_shared_upstreams_up

pytestmark = pytest.mark.anyio

KINDS = ("http", "sse")


def remote_config(kind: str, url: str, share: str) -> str:
    return (
        "[sessions]\nlegacy_grace_secs = 0\n\n"
        '[upstreams.builtin]\nkind = "builtin"\n\n'
        f'[upstreams.remote]\nkind = "{kind}"\nurl = {toml_string(url)}\nshare = "{share}"\n'
    )


async def tour(client, kind: str) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"py_multiply", "py_whoami", "py_progress", "echo", "add", "sleep"} <= tools.keys(), sorted(tools)
    assert {"a", "b"} <= tools["py_multiply"].input_schema["properties"].keys()
    assert text_of(await client.call_tool("py_multiply", {"a": 6, "b": 7})) == "42"
    assert text_of(await client.call_tool("py_whoami", {})) == f"mcpgw-test-remote over {kind}"
    assert text_of(await client.call_tool("echo", {"text": "local"})) == "local"

    progress: list[tuple[float, float | None]] = []
    all_progress = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))
        if len(progress) == 3:
            all_progress.set()

    result = await client.call_tool("py_progress", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "done 3"
    with anyio.fail_after(5):
        await all_progress.wait()
    assert sorted(progress) == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)], progress


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", KINDS)
async def test_remote_upstream_per_session(start_gateway, remote_servers, kind, transport):
    gw = start_gateway(remote_config(kind, remote_servers.url(kind), "session"))
    with anyio.fail_after(60):
        async with connect(gw.url, transport) as client:
            await tour(client, kind)
        await wait_for_counts(gw.url, legacy=0, streamable=0)


@pytest.mark.parametrize("kind", KINDS)
async def test_remote_upstream_shared(start_gateway, remote_servers, kind):
    gw = start_gateway(remote_config(kind, remote_servers.url(kind), "shared"))
    await wait_shared_upstreams_up(gw, "remote")
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable") as one, connect(gw.url, "sse") as two:
            await tour(one, kind)
            await tour(two, kind)


CALLS = 30


@pytest.mark.parametrize("kind", KINDS)
async def test_remote_upstream_reuses_connections(start_gateway, remote_servers, kind):
    """Sequential calls through a shared remote upstream ride pooled keep-alive connections:
    a TCP proxy in front of the upstream counts the connections the gateway opens. Without a
    pool (rmcp's default client for Streamable HTTP) every call is a new connection."""
    target = urlsplit(remote_servers.url(kind))
    async with TcpCutter(target.hostname, target.port, arm_on=b"\0never\0", cut_on=b"\0never\0") as proxy:
        url = proxy.url + target.path
        gw = start_gateway(remote_config(kind, url, "shared"))
        await wait_shared_upstreams_up(gw, "remote")
        before = len(proxy.conns)
        with anyio.fail_after(60):
            async with connect(gw.url, "streamable") as client:
                for i in range(CALLS):
                    assert text_of(await client.call_tool("py_multiply", {"a": i, "b": 2})) == str(2 * i)
        opened = len(proxy.conns) - before
        posts = [r for r in proxy.requests if r.method == "POST"]
        assert len(posts) >= CALLS, f"the proxy saw {len(posts)} POSTs for {CALLS} calls"
        assert opened <= CALLS // 3, f"{opened} new upstream connections for {CALLS} sequential calls"
