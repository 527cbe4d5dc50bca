"""Stream resumption through the official Python SDK client (Streamable HTTP, protocol
2025-11-25): a TCP proxy cuts the POST stream of a slow `sleep` call after the first
progress notification; the SDK reconnects by itself (`GET /mcp` with `Last-Event-ID`, after
the `retry` interval of the priming event) and receives the progress it had not seen and the
result, exactly once."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import anyio
import pytest

from support import Recorder, connect, session_counts, text_of
from tcp_cutter import TcpCutter

pytestmark = pytest.mark.anyio

STEPS = 5
SLEEP_MS = 1500
RESULT_TEXT = f"slept {SLEEP_MS} ms"


def sse_ids(raw: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"^id: ?([^\r\n]*)", raw, re.M)]


async def test_post_stream_cut_then_resumed(gateway):
    target = urlsplit(gateway.url)
    progress: list[float] = []
    all_progress = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) >= STEPS:
            all_progress.set()

    with anyio.fail_after(30):
        async with TcpCutter(
            target.hostname, target.port, arm_on=b'"tools/call"', cut_on=b"notifications/progress"
        ) as proxy:
            rec = Recorder()
            async with connect(proxy.url, "streamable", recorder=rec) as client:
                assert client.protocol_version == "2025-11-25"
                result = await client.call_tool(
                    "sleep", {"ms": SLEEP_MS, "steps": STEPS}, progress_callback=on_progress
                )
                assert text_of(result) == RESULT_TEXT
                # The SDK runs progress callbacks as tasks: wait for them rather than racing them.
                with anyio.fail_after(5):
                    await all_progress.wait()
                assert await session_counts(gateway.url) == (0, 1)

    # The proxy did cut the call's stream, after the priming event and some progress.
    assert proxy.cut.is_set() and proxy.cut_conn is not None, "the proxy never cut the tools/call stream"
    cut_bytes = bytes(proxy.cut_conn.server_bytes)
    assert b"retry: 1000" in cut_bytes, f"no priming event with retry on the POST stream:\n{cut_bytes!r}"
    assert RESULT_TEXT.encode() not in cut_bytes, "the result came before the cut: nothing was resumed"
    seen_before_cut = sse_ids(cut_bytes)
    assert seen_before_cut, f"the POST stream's events carry no id:\n{cut_bytes!r}"

    # The call was sent once; the SDK resumed with GET + Last-Event-ID (the last id it had).
    posts = [r for r in proxy.requests if r.method == "POST" and r.conn == proxy.cut_conn.id]
    calls = [c for c in proxy.conns if b'"tools/call"' in c.client_bytes]
    assert len(calls) == 1, "tools/call was sent more than once"
    assert posts, proxy.requests
    resumes = [r for r in proxy.requests if r.method == "GET" and "last-event-id" in r.headers]
    assert resumes, f"no GET with Last-Event-ID after the cut: {proxy.requests}"
    resume = resumes[0]
    assert resume.after_cut and resume.path == "/mcp", resume
    assert resume.headers["last-event-id"] in seen_before_cut, (resume, seen_before_cut)
    assert resume.headers.get("mcp-session-id") == rec.session_id, resume

    # Exactly one result on the wire (the replay does not repeat it), and every progress
    # step reached the callback once, in order: those before the cut and the replayed rest.
    assert proxy.server_bytes().count(RESULT_TEXT.encode()) == 1
    assert progress == [float(i) for i in range(1, STEPS + 1)], progress
