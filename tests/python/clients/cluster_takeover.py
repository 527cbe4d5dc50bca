"""One Streamable HTTP session of the official Python SDK client (`initialize` handshake)
through a cluster's load balancer, step by step, for tests/tests/cluster.rs.

usage: cluster_takeover.py BASE_URL

Prints {"session": ID} after a first echo call, then waits for a line on its input (the
test kills the instance holding the session meanwhile), makes a second echo call in the
same session, and prints what it saw: the session id, the ids it sent, every HTTP status,
and the echoes; then waits for another line before it closes the session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import Recorder, connect, text_of  # noqa: E402


def report(line: dict) -> None:
    print(json.dumps(line), flush=True)


async def main() -> None:
    base_url = sys.argv[1]
    recorder = Recorder()
    with anyio.fail_after(60):
        async with connect(base_url, "streamable", recorder=recorder) as client:
            echoes = [text_of(await client.call_tool("echo", {"text": "before"}))]
            report({"session": recorder.session_id})
            await anyio.to_thread.run_sync(sys.stdin.readline)
            echoes.append(text_of(await client.call_tool("echo", {"text": "after"})))
            report(
                {
                    "session": recorder.session_id,
                    "sent_session_ids": sorted({e.session_header for e in recorder.exchanges if e.session_header}),
                    "statuses": [[e.method, e.status] for e in recorder.exchanges],
                    "echoes": echoes,
                }
            )
            # The test reads the store before the session ends (DELETE on close).
            await anyio.to_thread.run_sync(sys.stdin.readline)


if __name__ == "__main__":
    anyio.run(main)
