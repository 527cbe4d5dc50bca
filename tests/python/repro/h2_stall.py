"""Reproduces a stall in the Python HTTP/2 client stack (httpx2 -> httpcore2 with `h2`),
not in mcpgw: concurrent `tools/call`s over one HTTP/2 connection that also carries the
Streamable HTTP standalone GET stream sometimes wait for the next keepalive comment on that
stream, although the gateway answered them at once. See docs/testing.md, "Known client bugs".

Not a test (pytest does not collect this file). Run it against a gateway, for example
`make run` in one terminal and, in another:

    .venv/bin/python tests/python/repro/h2_stall.py http://127.0.0.1:8080 --rounds 50

Each round opens a session with the official SDK over h2c (HTTP/2 with prior knowledge)
and sends 8 `echo` calls at once; a call that takes longer than 2 s counts as stalled. It
prints the rounds that stalled and exits 1 if any did (0 if none did, in which case the
bug did not show this time). `--http1` runs the same rounds over HTTP/1.1 for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

CALLS = 8
STALL_S = 2.0
# Longer than mcpgw's default keepalive (15 s), so a stalled call is seen to end with it.
CALL_TIMEOUT_S = 30.0


async def one_round(url: str, http2: bool) -> list[float]:
    """The latency of each of CALLS concurrent calls in a fresh session, in seconds."""
    async with httpx2.AsyncClient(http1=not http2, http2=http2, timeout=httpx2.Timeout(10.0, read=60.0)) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode="legacy", cache=None, read_timeout_seconds=CALL_TIMEOUT_S) as client:
            # As in the test that showed it: one call first, so the standalone GET stream is
            # open and being read when the concurrent calls go out.
            await client.call_tool("echo", {"text": "first"})
            latencies = [0.0] * CALLS

            async def call(i: int) -> None:
                start = time.monotonic()
                result = await client.call_tool("echo", {"text": f"call {i}"})
                assert not result.is_error, result
                latencies[i] = time.monotonic() - start

            async with anyio.create_task_group() as tg:
                for i in range(CALLS):
                    tg.start_soon(call, i)
            return latencies


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8080", help="the gateway's base URL")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--http1", action="store_true", help="HTTP/1.1 instead of h2c")
    args = parser.parse_args()
    stalled = 0
    for n in range(args.rounds):
        latencies = await one_round(args.url.rstrip("/"), http2=not args.http1)
        slow = [f"{t:.1f} s" for t in latencies if t > STALL_S]
        if slow:
            stalled += 1
            print(f"round {n}: {len(slow)} of {CALLS} calls stalled ({', '.join(slow)}); the rest took "
                  f"{max(t for t in latencies if t <= STALL_S) * 1000:.0f} ms at most", flush=True)
    print(f"{stalled} of {args.rounds} rounds stalled ({'HTTP/1.1' if args.http1 else 'HTTP/2'})")
    return 1 if stalled else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
