"""HTTP/2: the official SDK over HTTP/2 with prior knowledge (h2c, httpx2 with the `h2` package
as the client's HTTP/2 stack, not hyper's), on both transports: a session with a call that
streams progress, and a clean close, every exchange over HTTP/2.

Why: mcpgw serves HTTP/1.1 and HTTP/2 on the same port (hyper-util's auto builder); proxies
and clients that speak HTTP/2 to their upstreams must get the same MCP behaviour.

Many calls at once on one connection are tested in tests/tests/http2.rs with hyper's own
HTTP/2 client, not here: this client's HTTP/2 layer (httpcore2) can leave concurrent calls
waiting behind the read of the standalone GET stream until its next keepalive, a client bug
described in docs/testing.md ("Known client bugs") with tests/python/repro/h2_stall.py."""

from __future__ import annotations

import anyio
import pytest

from support import TRANSPORTS, Recorder, connect, text_of, wait_for_counts

pytestmark = pytest.mark.anyio


@pytest.mark.gateway_config("[sessions]\nlegacy_grace_secs = 0\n")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sdk_session_over_http2(gateway, transport):
    recorder = Recorder(http2=True)
    progress: list[float] = []
    both_progress = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) >= 2:
            both_progress.set()

    with anyio.fail_after(30):
        async with connect(gateway.url, transport, recorder=recorder) as client:
            assert text_of(await client.call_tool("echo", {"text": "over h2"})) == "over h2"
            result = await client.call_tool("sleep", {"ms": 100, "steps": 2}, progress_callback=on_progress)
            assert not result.is_error, result
            # The SDK runs progress callbacks as tasks: wait for them rather than racing them.
            with anyio.fail_after(5):
                await both_progress.wait()
            assert sorted(progress) == [1.0, 2.0], progress
        await wait_for_counts(gateway.url, legacy=0, streamable=0)

    assert recorder.exchanges, "the client made no request"
    versions = {e.http_version for e in recorder.exchanges}
    assert versions == {"HTTP/2"}, versions
    # Every request the SDK made was answered as it expects (no 4xx/5xx along the way).
    assert all(e.status < 400 for e in recorder.exchanges), recorder.exchanges
