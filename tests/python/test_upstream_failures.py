"""Upstream children that die, sessions that end, a gateway that stops: calls fail fast, the
child is restarted, and no process is left behind.

The stdio upstream here is `fixtures/stdio_server.py` (standard library only, so it starts
in milliseconds): its `whoami` tool tells its pid and process group and the pid of a helper
process it started in that group; its `hang` tool reports progress and then sleeps."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support import (
    TRANSPORTS,
    alive,
    connect,
    descendants,
    stdio_upstream,
    text_of,
    wait_all_gone,
    wait_for_counts,
    wait_shared_upstreams_up,
)

pytestmark = pytest.mark.anyio

STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"
NO_GRACE = "[sessions]\nlegacy_grace_secs = 0\n\n"


def victim(name: str = "victim", share: str = "session") -> str:
    return stdio_upstream(name, sys.executable, [STDIO_SERVER], share=share)


async def whoami(client, tool: str = "whoami") -> dict:
    info = json.loads(text_of(await client.call_tool(tool, {})))
    assert info["pgid"] == info["pid"], f"the child should lead its own process group: {info}"
    assert info["helper_pid"] in alive([info["helper_pid"]]), "the fixture's helper should be running"
    return info


@pytest.mark.parametrize(
    ("share", "transport"), [("session", "streamable"), ("session", "sse"), ("shared", "streamable")]
)
async def test_killed_child_fails_its_call_fast_and_is_restarted(start_gateway, transport, share):
    gw = start_gateway(NO_GRACE + victim(share=share))
    if share == "shared":
        await wait_shared_upstreams_up(gw, "victim")
    with anyio.fail_after(60):
        async with connect(gw.url, transport) as client:
            before = await whoami(client)

            # A call in flight in the child: its progress notification proves it got there.
            started = anyio.Event()

            async def on_progress(value, total, message) -> None:
                started.set()

            outcome: dict = {}

            async def hang() -> None:
                try:
                    outcome["result"] = await client.call_tool(
                        "hang", {"seconds": 30}, read_timeout_seconds=20, progress_callback=on_progress
                    )
                except MCPError as e:
                    outcome["error"] = e
                outcome["at"] = time.monotonic()

            async with anyio.create_task_group() as tg:
                tg.start_soon(hang)
                with anyio.fail_after(10):
                    await started.wait()
                killed_at = time.monotonic()
                os.kill(before["pid"], signal.SIGKILL)

            # The call fails promptly with a JSON-RPC error (not a tool result, not a timeout).
            assert "result" not in outcome, f"the call of a killed child returned a result: {outcome['result']}"
            error = outcome["error"]
            took = outcome["at"] - killed_at
            assert took < 2.0, f"the call failed {took:.2f} s after the kill (error: {error})"
            assert "timed out" not in error.message, error
            assert "victim" in error.message, f"the error should name the upstream: {error.code} {error.message}"

            try:
                # The child is restarted (first backoff 200 ms); a later call succeeds.
                deadline = time.monotonic() + 15
                attempts: list[str] = []
                while True:
                    try:
                        after = await whoami(client)
                        break
                    except (MCPError, AssertionError) as e:
                        attempts.append(str(e))
                        if time.monotonic() >= deadline:
                            pytest.fail(f"no call succeeded within 15 s of the kill; last errors: {attempts[-3:]}")
                        await anyio.sleep(0.1)
                assert after["pid"] != before["pid"], "a new child should serve the call"
            finally:
                # No orphan: the whole process group of the dead child is gone, its helper too
                # (survivors are killed by the check, so a failing run leaks nothing).
                await wait_all_gone([before["pid"], before["helper_pid"]], [before["pgid"]], within=3)
            assert text_of(await client.call_tool("hang", {"seconds": 0})) == "woke up"


async def test_a_child_that_answers_and_exits_at_once_gives_its_answer(start_gateway):
    """The answer, then at once the end of the child's output: the call gets the answer. The
    gateway saw both and once picked either at random, answering about half of these calls
    "it exited during the call; it is being restarted" instead. A session per call (each
    with a child of its own), twenty times."""
    gw = start_gateway(NO_GRACE + victim())
    with anyio.fail_after(60):
        for _ in range(20):
            async with connect(gw.url, "streamable") as client:
                assert text_of(await client.call_tool("last_words", {})) == "goodbye"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ending_a_session_ends_its_child(start_gateway, transport):
    """`share = "session"`: a clean close (DELETE on Streamable HTTP, closing the stream on
    legacy SSE) ends the session's child and its whole process group."""
    gw = start_gateway(NO_GRACE + victim())
    with anyio.fail_after(30):
        async with connect(gw.url, transport) as client:
            info = await whoami(client)
            others = await whoami(client)
            assert others["pid"] == info["pid"], "one session, one child"
        await wait_for_counts(gw.url, legacy=0, streamable=0)
        await wait_all_gone([info["pid"], info["helper_pid"]], [info["pgid"]], within=5)
        assert descendants(gw.proc.pid) == {}, "no child of the gateway should remain"


async def test_each_session_has_its_own_child(start_gateway):
    gw = start_gateway(NO_GRACE + victim())
    with anyio.fail_after(30):
        async with connect(gw.url, "streamable") as one, connect(gw.url, "sse") as two:
            first, second = await whoami(one), await whoami(two)
            assert first["pid"] != second["pid"], (first, second)
        await wait_all_gone([first["pid"], second["pid"]], [first["pgid"], second["pgid"]], within=5)


async def test_sigterm_leaves_no_child(start_gateway, everything_js):
    """At SIGTERM, with sessions open, the gateway ends every child (per-session and shared,
    node and python, with their process groups) and exits 0."""
    config = (
        NO_GRACE
        + victim("mine", share="session")
        + victim("ours", share="shared")
        + stdio_upstream("everything", "node", [everything_js, "stdio"], share="session")
    )
    gw = start_gateway(config)
    await wait_shared_upstreams_up(gw, "ours")
    with anyio.fail_after(60):
        clients = AsyncExitStack()
        try:
            streamable = await clients.enter_async_context(connect(gw.url, "streamable"))
            legacy = await clients.enter_async_context(connect(gw.url, "sse"))
            # The tools of "mine" and "ours" collide: both are exposed with their prefix.
            mine = [await whoami(streamable, "mine_whoami"), await whoami(legacy, "mine_whoami")]
            assert text_of(await streamable.call_tool("echo", {"message": "x"})) == "Echo: x"
            assert text_of(await legacy.call_tool("echo", {"message": "x"})) == "Echo: x"
            snapshot = descendants(gw.proc.pid)
            for info in mine:
                assert {info["pid"], info["helper_pid"]} <= set(snapshot), (info, snapshot)
            commands = [p.cmdline for p in snapshot.values()]
            # two per-session python children and the shared one, each with its helper; two node children
            assert sum(str(STDIO_SERVER) in c for c in commands) == 3, commands
            assert sum(str(everything_js) in c for c in commands) == 2, commands
            assert sum(c == "sleep 120" for c in commands) == 3, commands

            code = await anyio.to_thread.run_sync(gw.stop)
            assert code == 0, f"mcpgw exited with status {code} after SIGTERM"
            await wait_all_gone(set(snapshot), {p.pgid for p in snapshot.values()}, within=5)
        finally:
            with contextlib.suppress(Exception):
                await clients.aclose()  # the gateway is gone: the clients' own close may fail
