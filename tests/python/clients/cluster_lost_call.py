"""One Streamable HTTP session of the official Python SDK client (`initialize` handshake)
through a cluster's load balancer, whose instance dies during a call, for
tests/tests/cluster_journal.rs.

usage: cluster_lost_call.py BASE_URL

Makes an echo call, then starts a `sleep` call with progress and prints {"session": ID}
once two progress notifications arrived. Then it waits for a line on its input (the test
kills the instance holding the session meanwhile), waits for the sleep call's outcome (the
SDK resumes its POST stream with Last-Event-ID by itself), makes another echo call in the
same session, and prints what it saw: the progress values, the call's outcome, the echoes,
the session ids it sent, and, tapped below the SDK (tap.py), every HTTP exchange: the
request ids it sent and the event ids and messages (or JSON body) that came back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp.shared.exceptions import MCPError  # noqa: E402
from support import HTTP_TIMEOUT, Recorder, connect, text_of  # noqa: E402
from tap import Tap  # noqa: E402


def report(line: dict) -> None:
    print(json.dumps(line), flush=True)


async def main() -> None:
    base_url = sys.argv[1]
    tap = Tap()
    recorder = Recorder()

    def http_client(headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None):
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or HTTP_TIMEOUT,
            auth=auth,
            transport=tap,
            event_hooks={"response": [recorder.on_response]},
        )

    recorder.http_client = http_client  # type: ignore[method-assign]
    progress: list[float] = []
    two = anyio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)
        if len(progress) == 2:
            two.set()

    with anyio.fail_after(60):
        async with connect(base_url, "streamable", recorder=recorder) as client:
            echoes = [text_of(await client.call_tool("echo", {"text": "before"}))]

            async def slow() -> None:
                try:
                    result = await client.call_tool(
                        "sleep", {"ms": 8000, "steps": 16}, read_timeout_seconds=30, progress_callback=on_progress
                    )
                    outcome["result"] = result.model_dump(mode="json")
                except MCPError as e:
                    outcome["error"] = {"code": e.code, "message": e.message}

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                await two.wait()
                report({"session": recorder.session_id})
                await anyio.to_thread.run_sync(sys.stdin.readline)
            echoes.append(text_of(await client.call_tool("echo", {"text": "after"})))
            report(
                {
                    "session": recorder.session_id,
                    "sent_session_ids": sorted({e.session_header for e in recorder.exchanges if e.session_header}),
                    "progress": progress,
                    "outcome": outcome,
                    "echoes": echoes,
                    "exchanges": tap.exchanges,
                }
            )


if __name__ == "__main__":
    anyio.run(main)
