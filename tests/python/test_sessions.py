"""Session life cycle through the official Python SDK client: clean and dirty closes,
reconnects, both transports at once, and many sessions in a row leaving the registry empty."""

from __future__ import annotations

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support import TRANSPORTS, Recorder, connect, session_counts, text_of, wait_for_counts

pytestmark = pytest.mark.anyio

# A legacy session ends as soon as its event stream closes; an abandoned Streamable session
# (no DELETE, no stream) is reaped after one idle second.
QUICK_REAP = "[sessions]\nlegacy_grace_secs = 0\nidle_timeout_secs = 1\n"
NO_GRACE = "[sessions]\nlegacy_grace_secs = 0\n"


def kind_counts(transport: str, n: int) -> tuple[int, int]:
    return (n, 0) if transport == "sse" else (0, n)


@pytest.mark.gateway_config(NO_GRACE)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_clean_close_then_reconnect(gateway, transport):
    first, second = Recorder(), Recorder()
    with anyio.fail_after(30):
        async with connect(gateway.url, transport, recorder=first) as client:
            assert text_of(await client.call_tool("echo", {"text": "first"})) == "first"
            assert await session_counts(gateway.url) == kind_counts(transport, 1)
        if transport == "streamable":
            assert [(d.status, d.session_header) for d in first.requests("DELETE")] == [(200, first.session_id)]
        await wait_for_counts(gateway.url, 0, 0)

        async with connect(gateway.url, transport, recorder=second) as client:
            assert text_of(await client.call_tool("echo", {"text": "second"})) == "second"
            assert text_of(await client.call_tool("add", {"a": 40, "b": 2})) == "42"
            assert await session_counts(gateway.url) == kind_counts(transport, 1)
        await wait_for_counts(gateway.url, 0, 0)

    assert first.session_id and second.session_id
    assert first.session_id != second.session_id, "a reconnect must get a new session"


@pytest.mark.gateway_config(QUICK_REAP)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_dirty_close_then_reconnect(gateway, transport):
    """The client task is cancelled in the middle of a long `sleep` call; the Streamable
    client does not send DELETE. A new client then connects and works, and the gateway
    eventually drops the abandoned session (legacy: its stream closed; Streamable: idle)."""
    doomed, fresh = Recorder(), Recorder()
    sleeping = anyio.Event()
    finished_normally = False

    async def doomed_client() -> None:
        nonlocal finished_normally

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            sleeping.set()

        async with connect(gateway.url, transport, recorder=doomed, terminate_on_close=False) as client:
            assert text_of(await client.call_tool("echo", {"text": "before"})) == "before"
            await client.call_tool("sleep", {"ms": 3000, "steps": 30}, progress_callback=on_progress)
            finished_normally = True

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(doomed_client)
            await sleeping.wait()  # the call is in flight on the gateway
            tg.cancel_scope.cancel()  # kill the client: connections dropped, no goodbye
        assert not finished_normally
        assert doomed.session_id
        assert doomed.requests("DELETE") == [], doomed.exchanges

        async with connect(gateway.url, transport, recorder=fresh) as client:
            assert fresh.session_id and fresh.session_id != doomed.session_id
            assert text_of(await client.call_tool("echo", {"text": "after"})) == "after"
            assert text_of(await client.call_tool("add", {"a": 1, "b": 2})) == "3"
            progress = []
            got_two = anyio.Event()

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)
                if len(progress) == 2:
                    got_two.set()

            result = await client.call_tool("sleep", {"ms": 100, "steps": 2}, progress_callback=on_progress)
            assert not result.is_error
            with anyio.fail_after(5):
                await got_two.wait()

        # Everything ends: the fresh session at once, the abandoned one once the gateway notices.
        await wait_for_counts(gateway.url, 0, 0, within=10)


@pytest.mark.gateway_config(NO_GRACE)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_abandoned_request_leaves_the_session_usable(gateway, transport):
    """The SDK gives up on a long `sleep` (read timeout) and sends `notifications/cancelled`;
    the session goes on answering at once."""
    with anyio.fail_after(30):
        async with connect(gateway.url, transport) as client:
            with pytest.raises(MCPError):
                await client.call_tool("sleep", {"ms": 5000}, read_timeout_seconds=0.3)
            with anyio.fail_after(2):
                assert text_of(await client.call_tool("echo", {"text": "next"})) == "next"
                assert text_of(await client.call_tool("add", {"a": 2, "b": 2})) == "4"
        await wait_for_counts(gateway.url, 0, 0)


@pytest.mark.gateway_config(NO_GRACE)
async def test_streamable_and_legacy_clients_at_the_same_time(gateway):
    with anyio.fail_after(30):
        async with (
            connect(gateway.url, "streamable") as modern,
            connect(gateway.url, "sse") as legacy,
        ):
            assert await session_counts(gateway.url) == (1, 1)

            # Interleaved calls.
            assert text_of(await modern.call_tool("echo", {"text": "s1"})) == "s1"
            assert text_of(await legacy.call_tool("echo", {"text": "l1"})) == "l1"
            assert text_of(await modern.call_tool("add", {"a": 1, "b": 2})) == "3"
            assert text_of(await legacy.call_tool("add", {"a": 10, "b": 20})) == "30"
            assert {t.name for t in (await legacy.list_tools()).tools} >= {"echo", "add", "sleep"}
            assert (await modern.read_resource("mcpgw://about")).contents[0].text
            assert "Bo" in (await legacy.get_prompt("greeting", {"name": "Bo"})).messages[0].content.text

            # Concurrent: a sleep with progress on each, and more calls on both while they run.
            progress: dict[str, list[float]] = {"modern": [], "legacy": []}
            done: dict[str, anyio.Event] = {"modern": anyio.Event(), "legacy": anyio.Event()}
            results: dict[str, str] = {}

            async def sleeper(name: str, client, steps: int) -> None:
                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    assert total == steps
                    progress[name].append(value)
                    if len(progress[name]) == steps:
                        done[name].set()

                result = await client.call_tool("sleep", {"ms": 400, "steps": steps}, progress_callback=on_progress)
                results[name] = text_of(result)

            async def chatter(name: str, client) -> None:
                for i in range(5):
                    assert text_of(await client.call_tool("echo", {"text": f"{name}-{i}"})) == f"{name}-{i}"

            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper, "modern", modern, 4)
                tg.start_soon(sleeper, "legacy", legacy, 5)
                tg.start_soon(chatter, "modern", modern)
                tg.start_soon(chatter, "legacy", legacy)
            with anyio.fail_after(5):
                await done["modern"].wait()
                await done["legacy"].wait()
            # Each client got exactly its own progress notifications.
            assert sorted(progress["modern"]) == [1.0, 2.0, 3.0, 4.0], progress
            assert sorted(progress["legacy"]) == [1.0, 2.0, 3.0, 4.0, 5.0], progress
            assert set(results) == {"modern", "legacy"}

        await wait_for_counts(gateway.url, 0, 0)


SESSIONS_PER_TRANSPORT = 50


@pytest.mark.gateway_config(NO_GRACE)
async def test_many_sessions_leave_the_registry_empty(gateway):
    """50 clients on each transport, connected, used and closed one after another (the two
    transports alternating, and the SDK's two connect modes too: `auto` sends a
    `server/discover` probe first, which /mcp answers statelessly and /sse with a session);
    afterwards /healthz shows no live session."""
    seen: dict[str, set[str]] = {t: set() for t in TRANSPORTS}
    with anyio.fail_after(90):
        for i in range(SESSIONS_PER_TRANSPORT):
            for transport in TRANSPORTS:
                rec = Recorder()
                mode = "legacy" if i % 2 == 0 else "auto"
                async with connect(gateway.url, transport, mode=mode, recorder=rec) as client:
                    word = f"{transport}-{i}"
                    assert text_of(await client.call_tool("echo", {"text": word})) == word
                if transport == "streamable" and mode == "auto":
                    # The probe is answered: the client speaks 2026-07-28, with no session.
                    assert rec.session_id is None and rec.requests("DELETE") == [], rec.exchanges
                    continue
                assert rec.session_id
                seen[transport].add(rec.session_id)
                if transport == "streamable":
                    assert [d.status for d in rec.requests("DELETE")] == [200], rec.exchanges
        await wait_for_counts(gateway.url, 0, 0)
    expected = {"sse": SESSIONS_PER_TRANSPORT, "streamable": SESSIONS_PER_TRANSPORT // 2}
    for transport in TRANSPORTS:
        assert len(seen[transport]) == expected[transport], f"{transport} session ids were reused"
