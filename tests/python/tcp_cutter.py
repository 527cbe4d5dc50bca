"""A TCP proxy for the resumption tests: it forwards bytes both ways between a client and the
gateway, records the HTTP request heads the client sent (in order, per connection), and cuts
one connection in the middle of a response: once it has forwarded server bytes containing
`cut_on` on a connection whose client bytes contain `arm_on`, it closes that connection on
both sides (once).

It reads no HTTP beyond finding request heads (`METHOD /path HTTP/1.1` ... blank line) in
what the client sent, which is enough for plain HTTP/1.1 from one SDK client."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

REQUEST_HEAD = re.compile(rb"(GET|POST|DELETE|PUT|PATCH|OPTIONS|HEAD) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n", re.S)


@dataclass
class RequestHead:
    seq: int  # order among every request head the proxy saw
    conn: int  # which client connection carried it
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    after_cut: bool  # sent after the proxy cut its connection


@dataclass
class Conn:
    id: int
    client_bytes: bytearray = field(default_factory=bytearray)
    server_bytes: bytearray = field(default_factory=bytearray)
    scanned: int = 0


class TcpCutter:
    def __init__(self, target_host: str, target_port: int, *, arm_on: bytes, cut_on: bytes) -> None:
        self.target = (target_host, target_port)
        self.arm_on = arm_on
        self.cut_on = cut_on
        self.conns: list[Conn] = []
        self.requests: list[RequestHead] = []
        self.cut_conn: Conn | None = None
        self.cut = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpCutter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def server_bytes(self) -> bytes:
        """Everything every connection received from the gateway, concatenated per connection."""
        return b"".join(bytes(c.server_bytes) for c in self.conns)

    # ---- the forwarding --------------------------------------------------------------------

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(len(self.conns))
        self.conns.append(conn)
        self._writers.append(c_writer)
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            self._tasks.discard(task)
            return
        self._writers.append(s_writer)

        def close_both() -> None:
            c_writer.close()
            s_writer.close()

        async def upstream() -> None:  # client -> gateway
            try:
                while data := await c_reader.read(65536):
                    conn.client_bytes += data
                    self._scan_heads(conn)
                    s_writer.write(data)
                    await s_writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                close_both()

        async def downstream() -> None:  # gateway -> client
            try:
                while data := await s_reader.read(65536):
                    conn.server_bytes += data
                    c_writer.write(data)
                    await c_writer.drain()
                    if (
                        self.cut_conn is None
                        and self.arm_on in conn.client_bytes
                        and self.cut_on in conn.server_bytes
                    ):
                        self.cut_conn = conn
                        self.cut.set()
                        break
            except (ConnectionError, OSError):
                pass
            finally:
                close_both()

        try:
            await asyncio.gather(upstream(), downstream())
        finally:
            self._tasks.discard(task)

    def _scan_heads(self, conn: Conn) -> None:
        while m := REQUEST_HEAD.search(conn.client_bytes, conn.scanned):
            headers: dict[str, str] = {}
            for line in m.group(3).split(b"\r\n"):
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode(errors="replace")
            self.requests.append(
                RequestHead(
                    seq=len(self.requests),
                    conn=conn.id,
                    method=m.group(1).decode(),
                    path=m.group(2).decode(),
                    headers=headers,
                    after_cut=self.cut.is_set(),
                )
            )
            conn.scanned = m.end()
