"""Remote upstreams: a Python SDK server (`MCPServer`, formerly FastMCP; see
`fixtures/remote_server.py`) served over Streamable HTTP and over legacy HTTP+SSE, configured
as an `http` and as an `sse` upstream. A client lists and calls its tools through mcpgw,
next to the built-in ones, over both client transports. And an `http` upstream that ends its
reply streams early (`fixtures/polling_server.py`): resumed, bounded, and under a deadline."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tcp_cutter import TcpCutter
from support import TRANSPORTS, connect, text_of, toml_string, wait_for_counts, wait_shared_upstreams_up

FIXTURES = Path(__file__).resolve().parent / "fixtures"

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
        # Not one connection: a legacy upstream's answer comes on its event stream and can beat
        # the 202 of its own POST, so the next call's POST finds that connection still busy and
        # the pool opens another (each then carries 3-5 POSTs; 7-11 connections for 30 calls
        # measured). Without a pool it is one connection per call.
        assert opened <= CALLS // 2, f"{opened} new upstream connections for {CALLS} sequential calls"


# ---- an http upstream that ends a reply stream early (SEP-1699; fixtures/polling_server.py) ----


class PollingServer:
    """`fixtures/polling_server.py`, running: its tools close their reply stream after the
    priming event and keep the result for a `GET` with `Last-Event-ID`."""

    START_TIMEOUT_S = 60.0  # importing the SDK takes seconds on a loaded machine

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FIXTURES / "polling_server.py"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, name="polling-server", daemon=True).start()
        try:
            line = lines.get(timeout=self.START_TIMEOUT_S)
        except queue.Empty:
            line = None
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+/mcp)", line or "")
        if not match:
            self.stop()
            pytest.fail(f"fixtures/polling_server.py did not start within {self.START_TIMEOUT_S} s")
        self.url = match.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def start_polling() -> Iterator[Callable[..., PollingServer]]:
    started: list[PollingServer] = []

    def start(*args: str) -> PollingServer:
        started.append(PollingServer(*args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def polling_config(url: str, extra: str = "") -> str:
    # Resuming a reply stream (SEP-1699) is the handshake era's: the SDK's server speaks
    # 2026-07-28 too, where there is no resumption, and `era = "auto"` would pick that.
    return f'{extra}[upstreams.poll]\nkind = "http"\nurl = {toml_string(url)}\nera = "handshake"\n'


async def polling_stats(client) -> dict:
    return json.loads(text_of(await client.call_tool("polling_stats", {})))


# The upstream's `retry:`, longer than mcpgw's own first wait (250 ms), so a resume that
# came sooner than this ignored it.
RETRY_MS = 1500


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_http_upstream_reply_stream_closed_early_is_resumed(start_gateway, start_polling, transport):
    """The upstream sends a priming event (id, `retry: 1500`), closes the reply stream, and
    keeps the result: mcpgw waits `retry`, resumes with `GET` + `Last-Event-ID`, and the client
    gets the result once; the tool ran once (the call was not sent again)."""
    server = start_polling(str(RETRY_MS))
    gw = start_gateway(polling_config(server.url))
    with anyio.fail_after(60):
        async with connect(gw.url, transport) as client:
            result = await client.call_tool("py_polled", {"text": "once"}, read_timeout_seconds=30)
            assert text_of(result) == "once"
            assert not result.is_error
            stats = await polling_stats(client)
    assert stats["calls"] == {"py_polled": 1}, stats
    resumes = stats["resumes_after_ms"]
    assert len(resumes) >= 1, stats
    assert min(resumes) >= RETRY_MS - 50, f"resumed before the upstream's retry: of {RETRY_MS} ms: {stats}"


async def test_http_upstream_refusing_the_resume_fails_the_call_soon(start_gateway, start_polling):
    """The upstream closes the reply stream but answers every resume with 503: the call fails
    after a bounded number of attempts (about 8 s), long before its deadline (120 s), with an
    error that says so."""
    server = start_polling("100", "refuse-resume")
    gw = start_gateway(polling_config(server.url, "[server]\ncall_timeout_secs = 120\n\n"))
    async with connect(gw.url, "streamable") as client:
        started = time.monotonic()
        with anyio.fail_after(60), pytest.raises(MCPError) as failed:
            await client.call_tool("py_polled", {"text": "lost"}, read_timeout_seconds=60)
        elapsed = time.monotonic() - started
        stats = await polling_stats(client)
    attempts = len(stats["resumes_after_ms"])
    assert 1 <= attempts <= 6, stats
    # Says what happened, not rmcp's bare "Transport closed".
    assert failed.value.error.message == (
        f"upstream 'poll': its event stream closed and could not be resumed after {attempts} attempts (HTTP 503)"
    ), failed.value
    assert elapsed < 60, elapsed


async def test_http_upstream_resumed_without_end_fails_the_call_after_a_bounded_number(start_gateway, start_polling):
    """The upstream closes the reply stream, then answers every resume with a stream that
    holds only a new priming event (`retry: 50`) and ends: mcpgw stops resuming after five
    such resumes in a row and the call fails at once, not at its deadline (120 s), saying why."""
    server = start_polling("100", "empty-resume")
    gw = start_gateway(polling_config(server.url, "[server]\ncall_timeout_secs = 120\n\n"))
    async with connect(gw.url, "streamable") as client:
        started = time.monotonic()
        with anyio.fail_after(60), pytest.raises(MCPError) as failed:
            await client.call_tool("py_polled", {"text": "never"}, read_timeout_seconds=60)
        elapsed = time.monotonic() - started
        stats = await polling_stats(client)
    assert failed.value.error.message == (
        "upstream 'poll': its event stream closed and could not be resumed after 5 attempts (each brought nothing new)"
    ), failed.value
    assert len(stats["resumes_after_ms"]) == 5, stats
    assert elapsed < 60, elapsed


async def test_a_call_whose_result_never_comes_ends_at_the_default_deadline(start_gateway, start_polling):
    """The upstream closes the reply stream and never produces the result, and its table sets
    no call_timeout_secs: the gateway's default deadline (`[server] call_timeout_secs`, 300 s
    unless set; 2 s here) cancels the call with an error that says so."""
    server = start_polling("100")
    gw = start_gateway(polling_config(server.url, "[server]\ncall_timeout_secs = 2\n\n"))
    async with connect(gw.url, "streamable") as client:
        with anyio.fail_after(30), pytest.raises(MCPError) as failed:
            await client.call_tool("py_stalled", {}, read_timeout_seconds=30)
        message = str(failed.value)
        assert "timed out after 2s" in message, message
        assert "upstream 'poll'" in message and "call_timeout_secs" in message, message
        # The gateway and the upstream are still fine.
        assert text_of(await client.call_tool("py_polled", {"text": "after"}, read_timeout_seconds=30)) == "after"


async def test_a_call_past_its_deadline_is_answered_though_its_upstream_never_takes_the_cancel(
    start_gateway, remote_servers
):
    """`call_timeout_secs = 1` on a legacy SSE upstream that never answers the POST of a
    `notifications/cancelled`: the client gets the deadline's error a moment after the
    deadline. The gateway waited for the cancel to be sent before answering, for ever."""
    url = remote_servers.url("sse-deaf")
    gw = start_gateway(
        f'[upstreams.remote]\nkind = "sse"\nurl = {toml_string(url)}\nshare = "session"\ncall_timeout_secs = 1\n'
    )
    with anyio.fail_after(30):
        async with connect(gw.url, "streamable") as client:
            started = time.monotonic()
            with pytest.raises(MCPError) as refused:
                await client.call_tool("py_sleep", {"seconds": 60})
            took = time.monotonic() - started
            assert "call_timeout_secs" in refused.value.message, refused.value.message
            # The deadline (1 s) and the grace for the cancel (2 s), with room for a slow machine.
            assert took < 10, f"answered {took:.1f} s after the call"
            assert text_of(await client.call_tool("py_sleep", {"seconds": 0})) == "slept"


async def test_a_post_its_legacy_sse_upstream_never_answers_is_given_up_after_its_deadlines(
    start_gateway, remote_servers
):
    """The cancel's POST that `sse-deaf` never answers is closed by the gateway once the
    longest of the upstream's deadlines (here `connect_timeout_secs`, 2 s) and 2 s more have
    passed, while the session lives on. It was kept open (and the task sending it alive)
    until the session ended."""
    url = remote_servers.url("sse-deaf")
    gw = start_gateway(
        f'[upstreams.remote]\nkind = "sse"\nurl = {toml_string(url)}\nshare = "session"\n'
        "call_timeout_secs = 1\nconnect_timeout_secs = 2\nlist_timeout_secs = 1\n"
    )
    with anyio.fail_after(30):
        async with connect(gw.url, "streamable") as client:
            # The server process is shared with other tests: count from here.
            before = int(text_of(await client.call_tool("py_abandoned_posts", {})))
            with pytest.raises(MCPError):
                await client.call_tool("py_sleep", {"seconds": 60})
            # The cancel went out at the call's deadline; its POST is given up 4 s later.
            abandoned = before
            with anyio.move_on_after(15):
                while abandoned == before:
                    abandoned = int(text_of(await client.call_tool("py_abandoned_posts", {})))
                    await anyio.sleep(0.05)
            assert abandoned == before + 1, "the unanswered POST of the cancel was never given up"
            assert text_of(await client.call_tool("py_sleep", {"seconds": 0})) == "slept"
