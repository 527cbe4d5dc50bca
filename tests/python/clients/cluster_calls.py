"""Sessions of the official Python SDK client through a cluster's load balancer, for
tests/tests/cluster.rs (which checks what the gateways saw).

usage: cluster_calls.py BASE_URL SESSIONS_PER_TRANSPORT CALLS

Opens SESSIONS_PER_TRANSPORT sessions on each transport (Streamable HTTP with the
`initialize` handshake, and legacy HTTP+SSE), all at once; each lists the tools and makes
CALLS echo calls. Prints one JSON line per session: its transport, its session id, the
HTTP status of every response it got, and the echoes it got back. Exits non-zero on any
failure (every SDK request has a bounded wait).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import TRANSPORTS, Recorder, connect, text_of  # noqa: E402


async def one_session(base_url: str, transport: str, calls: int, out: list[dict]) -> None:
    recorder = Recorder()
    echoes = []
    async with connect(base_url, transport, recorder=recorder) as client:
        await client.list_tools()
        for n in range(calls):
            echoes.append(text_of(await client.call_tool("echo", {"text": f"{transport}-{n}"})))
    out.append(
        {
            "client": "python",
            "transport": transport,
            "session": recorder.session_id,
            "statuses": [e.status for e in recorder.exchanges],
            "sent_session_ids": sorted({e.session_header for e in recorder.exchanges if e.session_header}),
            "echoes": echoes,
        }
    )


async def main() -> None:
    base_url, sessions, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out: list[dict] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for transport in TRANSPORTS:
                for _ in range(sessions):
                    group.start_soon(one_session, base_url, transport, calls, out)
    for line in out:
        print(json.dumps(line))


if __name__ == "__main__":
    anyio.run(main)
