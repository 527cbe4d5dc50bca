"""Streamable HTTP sessions of the official Python SDK client (`initialize` handshake)
calling through a cluster's load balancer while the test restarts every instance in turn,
for tests/tests/cluster_rolling.rs.

usage: cluster_rolling.py BASE_URL SESSIONS

Step by step, each step ended by a line on its input:
1. Opens SESSIONS sessions at once, each with the standalone GET stream the SDK opens by
   itself, and prints {"sessions": [ID, ...]} once each has made a first echo call. Then
   every session calls `echo` every 100 ms with a text of its own (`python-<i>-<n>`).
2. Makes a last call in each session and stops calling, and prints {"streams_home": {ID:
   true|false}}: whether each session's standalone stream is open again on the session's own
   instance (the one its id names, told by the load balancer's `X-Mcpgw-Node`) within 8 s.
   A restart ends the stream; the SDK opens it again by itself, on whichever instance holds
   the session then.
3. Waits (at most 8 s) for the two progress notifications the test sends to each session's
   standalone stream, closes, and prints one JSON line per session: its session id, the
   session ids it sent, the texts it sent and the echoes it got back, in order, the errors,
   and, tapped below the SDK (tap.py), every HTTP exchange with its status and events.

Every call has a bounded wait (support.REQUEST_TIMEOUT_S).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import HTTP_TIMEOUT, Recorder, connect, text_of  # noqa: E402
from tap import Tap  # noqa: E402

PERIOD_S = 0.1
# How long a session waits for its stream to be back home, and for the test's notifications:
# an instance that lost the session ends its stream within a second (its fence check), and
# the SDK opens it again after the `retry` the gateway sent (2 s while it drains).
STEP_S = 8.0


class Countdown:
    """`done` is set once `one()` was called `count` times."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.done = anyio.Event()

    def one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


class Steps:
    """What the sessions wait for, and what main waits for, between the steps."""

    def __init__(self, count: int) -> None:
        self.opened = Countdown(count)
        self.stop = anyio.Event()
        self.settled = Countdown(count)
        self.notified = anyio.Event()


class RollingSession:
    """One SDK session, its calls, and everything it saw."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.changed = anyio.Event()
        self.tap = Tap(on_change=lambda: self.changed.set())
        self.recorder = Recorder()
        self.recorder.http_client = self.http_client  # type: ignore[method-assign]
        self.texts: list[str] = []
        self.echoes: list[str] = []
        self.errors: list[str] = []
        self.home = False

    def http_client(self, headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None):
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or HTTP_TIMEOUT,
            auth=auth,
            transport=self.tap,
            event_hooks={"response": [self.recorder.on_response]},
        )

    def gets(self) -> list[dict[str, Any]]:
        return [e for e in self.tap.exchanges if e["method"] == "GET"]

    def stream_home(self) -> bool:
        """Whether the last standalone GET was answered 200 by the session's own instance,
        and its stream goes on."""
        gets = self.gets()
        own = (self.recorder.session_id or "")[:4]
        return bool(gets) and gets[-1]["status"] == 200 and gets[-1]["node"] == own and not gets[-1]["ended"]

    def progress_seen(self) -> int:
        return sum(
            1
            for e in self.gets()
            for event in e["events"]
            if (event["message"] or {}).get("method") == "notifications/progress"
        )

    async def wait_until(self, condition: Callable[[], bool]) -> bool:
        with anyio.move_on_after(STEP_S):
            while not condition():
                self.changed = anyio.Event()
                await self.changed.wait()
        return condition()

    async def echo(self, client: Any, n: int) -> None:
        text = f"python-{self.index}-{n}"
        self.texts.append(text)
        try:
            self.echoes.append(text_of(await client.call_tool("echo", {"text": text})))
        except Exception as e:  # noqa: BLE001 - every failure is reported, and the calls go on
            self.errors.append(f"{text}: {type(e).__name__}: {e}")

    async def calls(self, client: Any, stop: anyio.Event) -> None:
        """Calls every PERIOD_S until `stop`, then once more: the test saw every instance up
        before it said stop, so that call reaches the session's own instance, which takes the
        session back if another one held it."""
        n = 1
        next_at = anyio.current_time()
        while True:
            next_at = max(next_at + PERIOD_S, anyio.current_time())
            with anyio.move_on_after(next_at - anyio.current_time()):
                await stop.wait()
            last = stop.is_set()
            await self.echo(client, n)
            n += 1
            if last:
                return

    async def run(self, base_url: str, steps: Steps) -> dict[str, Any]:
        async with connect(base_url, "streamable", recorder=self.recorder) as client:
            await self.echo(client, 0)
            steps.opened.one()
            await self.calls(client, steps.stop)
            self.home = await self.wait_until(self.stream_home)
            steps.settled.one()
            await steps.notified.wait()
            await self.wait_until(lambda: self.progress_seen() >= 2)
        return {
            "client": "python",
            "session": self.recorder.session_id,
            "sent_session_ids": sorted({e["session"] for e in self.tap.exchanges if e["session"]}),
            "texts": self.texts,
            "echoes": self.echoes,
            "errors": self.errors,
            "exchanges": self.tap.exchanges,
        }


def report(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


async def main() -> None:
    base_url, count = sys.argv[1], int(sys.argv[2])
    sessions = [RollingSession(i) for i in range(count)]
    steps = Steps(count)
    reports: list[dict[str, Any]] = []

    async def run(session: RollingSession) -> None:
        reports.append(await session.run(base_url, steps))

    async def next_step() -> None:
        await anyio.to_thread.run_sync(sys.stdin.readline)

    async with anyio.create_task_group() as group:
        for session in sessions:
            group.start_soon(run, session)
        with anyio.fail_after(60):
            await steps.opened.done.wait()
        report({"sessions": [s.recorder.session_id for s in sessions]})
        await next_step()
        steps.stop.set()
        # Each session's wait is bounded (STEP_S, after a call of at most REQUEST_TIMEOUT_S).
        await steps.settled.done.wait()
        report({"streams_home": {s.recorder.session_id: s.home for s in sessions}})
        await next_step()
        steps.notified.set()
    for line in reports:
        report(line)


if __name__ == "__main__":
    anyio.run(main)
