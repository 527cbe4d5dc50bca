"""Helpers shared by the tests: running the gateway binary, connecting the official SDK
client over either transport, recording the HTTP exchanges it makes, reading `/healthz`."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
import mcp_types as types
from mcp_types import Implementation

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


class Gateway:
    """One running gateway process."""

    def __init__(self, binary: Path, config_path: Path, workdir: Path) -> None:
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        env = dict(os.environ)
        env.setdefault("MCPGW_LOG", "info")
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(config_path), "--listen", "127.0.0.1:0"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._drain, name="mcpgw-stderr", daemon=True)
        self._reader.start()
        self.url = self._wait_listening()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"mcpgw did not log its listening line within {START_TIMEOUT_S} s:\n{self.log_text()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=STOP_TIMEOUT_S)
                pytest.fail(f"mcpgw exited (status {code}) before listening:\n{self.log_text()}")
            match = LISTENING.search(line)
            if match:
                return match.group(1)

    def log_text(self) -> str:
        return "\n".join(self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM, then wait (bounded) for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"mcpgw did not exit within {STOP_TIMEOUT_S} s of SIGTERM:\n{self.log_text()}")
        self._reader.join(timeout=STOP_TIMEOUT_S)
        return code


Transport = Literal["streamable", "sse"]
TRANSPORTS: tuple[Transport, ...] = ("streamable", "sse")

# Every SDK request gets a bounded wait, so a lost response fails the test instead of hanging it.
REQUEST_TIMEOUT_S = 10.0
HTTP_TIMEOUT = httpx2.Timeout(10.0, read=60.0)
CLIENT_INFO = Implementation(name="mcpgw-e2e-python", version="0")


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    session_header: str | None
    http_version: str


@dataclass
class Recorder:
    """What one client did over HTTP: every response (method, path, status), and the
    session id the gateway gave it (the `Mcp-Session-Id` header, or the legacy
    `sessionId` of the endpoint event)."""

    exchanges: list[Exchange] = field(default_factory=list)
    session_id: str | None = None
    # HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    http2: bool = False

    async def on_response(self, response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid and self.session_id is None:
            self.session_id = sid
        self.exchanges.append(
            Exchange(
                method=response.request.method,
                path=response.request.url.path,
                status=response.status_code,
                session_header=response.request.headers.get("mcp-session-id"),
                http_version=response.http_version,
            )
        )

    def on_legacy_session(self, session_id: str) -> None:
        self.session_id = session_id

    def http_client(self, headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None):
        """An httpx2 client that reports to this recorder (also usable as the SSE client factory)."""
        return httpx2.AsyncClient(
            http1=not self.http2,
            http2=self.http2,
            headers=headers,
            timeout=timeout or HTTP_TIMEOUT,
            auth=auth,
            event_hooks={"response": [self.on_response]},
        )

    def requests(self, method: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method]


@asynccontextmanager
async def connect(
    base_url: str,
    transport: Transport,
    *,
    mode: str = "legacy",
    recorder: Recorder | None = None,
    terminate_on_close: bool = True,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """An SDK `Client` connected to the gateway over `transport`, handshake done.

    `mode` is the SDK's connect mode: "legacy" runs the `initialize` handshake
    (`ClientSession.initialize()`), "auto" (the SDK default) probes `server/discover` first.
    The response cache is off so that every call reaches the gateway. `client_options` go to
    the SDK's `Client` as they are (for example `sampling_callback`, `elicitation_callback`,
    `message_handler`; a callback also declares the matching client capability).
    """
    recorder = recorder or Recorder()
    if transport == "streamable":
        async with recorder.http_client() as http:
            t = streamable_http_client(f"{base_url}/mcp", http_client=http, terminate_on_close=terminate_on_close)
            async with Client(
                t,
                mode=mode,
                cache=None,
                read_timeout_seconds=REQUEST_TIMEOUT_S,
                client_info=CLIENT_INFO,
                **client_options,
            ) as client:
                yield client
    elif transport == "sse":
        t = sse_client(
            f"{base_url}/sse",
            timeout=10.0,
            sse_read_timeout=60.0,
            httpx_client_factory=recorder.http_client,
            on_session_created=recorder.on_legacy_session,
        )
        async with Client(
            t,
            mode=mode,
            cache=None,
            read_timeout_seconds=REQUEST_TIMEOUT_S,
            client_info=CLIENT_INFO,
            **client_options,
        ) as client:
            yield client
    else:  # pragma: no cover
        raise ValueError(transport)


def text_of(result: Any) -> str:
    """The text of a tool result's single text block."""
    assert not result.is_error, f"tool returned an error: {result}"
    assert len(result.content) == 1, result.content
    block = result.content[0]
    assert block.type == "text", block
    return block.text


async def healthz(base_url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(timeout=5.0) as http:
        response = await http.get(f"{base_url}/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok", body
    return body


async def session_counts(base_url: str) -> tuple[int, int]:
    """Live sessions in the gateway's registry: (legacy, streamable)."""
    sessions = (await healthz(base_url))["sessions"]
    return sessions["legacy"], sessions["streamable"]


async def wait_for_counts(base_url: str, legacy: int, streamable: int, *, within: float = 5.0) -> None:
    """Poll /healthz (every 20 ms) until it reports exactly these counts; fail after `within` s."""
    last: tuple[int, int] | None = None
    try:
        with anyio.fail_after(within):
            while True:
                last = await session_counts(base_url)
                if last == (legacy, streamable):
                    return
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(
            f"/healthz never reported legacy={legacy} streamable={streamable} within {within} s; "
            f"last seen legacy={last[0] if last else '?'} streamable={last[1] if last else '?'}"
        ) from None


# ---- upstreams: config snippets, tool results, processes ------------------------------------


def toml_string(value: str | Path) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(str(value))


def stdio_upstream(
    name: str, command: str | Path, args: list[str | Path], *, share: str = "session", extra: str = ""
) -> str:
    """A `[upstreams.NAME]` table for a stdio upstream."""
    arg_list = ", ".join(toml_string(a) for a in args)
    return (
        f"[upstreams.{name}]\nkind = \"stdio\"\ncommand = {toml_string(command)}\nargs = [{arg_list}]\n"
        f"share = \"{share}\"\n{extra}\n"
    )


def all_text(result: Any) -> str:
    """Every text block of a tool result, joined by newlines (whatever `is_error` says)."""
    return "\n".join(block.text for block in result.content if block.type == "text")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    cmdline: str


def processes() -> dict[int, Proc]:
    """Every process on the machine that is not a zombie, from /proc."""
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # it ended while we looked
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid, pgid = fields[0], int(fields[1]), int(fields[2])
        if state != "Z":
            table[int(entry)] = Proc(int(entry), ppid, pgid, state, cmdline)
    return table


def descendants(root: int) -> dict[int, Proc]:
    """The live processes below `root`, plus every live member of their process groups
    (a grandchild whose parent died is re-parented away but keeps its group)."""
    table = processes()
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found: dict[int, Proc] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = table[pid]
        stack.extend(children.get(pid, []))
    groups = {p.pgid for p in found.values()} - {os.getpgrp(), table[root].pgid if root in table else -1}
    for p in table.values():
        if p.pgid in groups:
            found.setdefault(p.pid, p)
    return found


def alive(pids: set[int] | list[int], groups: set[int] | list[int] = ()) -> dict[int, Proc]:
    """Which of `pids`, and which members of the process groups `groups`, are alive."""
    pids, groups = set(pids), set(groups)
    return {p.pid: p for p in processes().values() if p.pid in pids or p.pgid in groups}


async def wait_all_gone(pids: set[int] | list[int], groups: set[int] | list[int] = (), *, within: float) -> None:
    """Poll (every 20 ms) until none of `pids` and no member of `groups` is alive; fail after
    `within` s, naming the survivors (they are then killed, so the test leaks nothing)."""
    deadline = time.monotonic() + within
    while True:
        left = alive(pids, groups)
        if not left:
            return
        if time.monotonic() >= deadline:
            for p in left.values():
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            survivors = "\n".join(
                f"  pid {p.pid} ppid {p.ppid} pgid {p.pgid} {p.state}: {p.cmdline}" for p in left.values()
            )
            raise AssertionError(f"processes still alive {within} s later (now killed by the test):\n{survivors}")
        await anyio.sleep(0.02)


async def wait_for_line(lines: list[str], pattern: str, *, within: float, what: str) -> str:
    """Poll `lines`, which a reader thread fills from a process's output, every 20 ms until
    one matches the regex `pattern`; returns it, fails after `within` s naming `what`."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + within
    while True:
        for line in list(lines):
            if regex.search(line):
                return line
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} line matched {pattern!r} within {within} s:\n" + "\n".join(lines))
        await anyio.sleep(0.02)


async def wait_for_log(gw: Gateway, pattern: str, *, within: float = 20.0) -> str:
    """Wait until a line of the gateway's stderr matches the regex `pattern`; returns it."""
    return await wait_for_line(gw.log, pattern, within=within, what="mcpgw log")


async def wait_shared_upstreams_up(gw: Gateway, *names: str, within: float = 30.0) -> None:
    """Wait until the gateway logged that each of these shared upstreams is connected: clients
    then meet the state a gateway is in most of its life (the shared child started earlier)."""
    for name in names:
        await wait_for_log(gw, rf"upstream connected.*upstream={re.escape(name)}\b", within=within)


class Answers:
    """The client side of sampling and elicitation: fixed answers, and a record of every
    request the gateway forwarded to this client."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.sampling_prompts: list[str] = []
        self.elicitations: list[str] = []
        self.updated: list[str] = []
        self.update_seen = anyio.Event()

    @property
    def sampled(self) -> str:
        return f"sampled answer from {self.tag}"

    @property
    def name(self) -> str:
        return f"Name of {self.tag}"

    async def sampling(self, context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.sampling_prompts.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=self.sampled), model=f"model-{self.tag}"
        )

    async def elicitation(self, context, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.elicitations.append(params.message)
        return types.ElicitResult(action="accept", content={"name": self.name, "check": True})

    async def messages(self, message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
            self.update_seen.set()

    def options(self) -> dict:
        return {
            "sampling_callback": self.sampling,
            "elicitation_callback": self.elicitation,
            "message_handler": self.messages,
        }


def sampling_result(text: str) -> dict:
    """server-everything's sampling tool answers `LLM sampling result: \\n<JSON of the result>`."""
    head, _, body = text.partition("\n")
    assert head.startswith("LLM sampling result:"), text
    return json.loads(body)
