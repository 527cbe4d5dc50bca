"""HTTP/1.1 connection reuse after a rejected POST, at the socket level.

Why: a client whose POST is refused with a 400 (a `server/discover` probe whose headers
disagree with its body, and before 2026-07-28 was served, every probe) may send its next
request (a fallback `initialize`) on the same keep-alive connection. If the gateway
answers before reading the body and then closes the connection without saying so, that
next POST fails (httpx ReadError), intermittently: it depends on whether the refused
body had reached the gateway when it answered.

These tests make that timing deterministic: they send a POST's headers and, if the
response comes from the headers alone (within a second), read it before sending the body.
A server that answers before reading the request content must then either announce
`Connection: close` or keep reading (and discarding) the content and keep the connection
usable (RFC 9110 §10.1.1, RFC 9112 §9.6).
"""

from __future__ import annotations

import json
import select
import socket
from urllib.parse import urlsplit

import pytest

IO_TIMEOUT_S = 5.0

PROBE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body; raises on EOF before it is complete."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a complete response head (got {buf!r})")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the middle of a response body")
        rest += chunk
    return status, headers, rest[:length]


UNKNOWN_SESSION = "0123456789abcdef0123456789abcdef"
# How long the test lets the gateway take to answer from the headers alone before it
# concludes that the gateway is waiting for the body (correct too) and sends it.
EARLY_ANSWER_WINDOW_S = 1.0


@pytest.mark.parametrize(
    ("headers", "expected_status"),
    [
        # A probe whose MCP-Protocol-Version differs from its `_meta` version (-32020).
        pytest.param({"mcp-protocol-version": "2025-11-25"}, 400, id="probe-header-mismatch"),
        # A session the gateway no longer knows (ended, reaped, restarted gateway).
        pytest.param({"mcp-session-id": UNKNOWN_SESSION}, 404, id="unknown-session"),
        # No version header beside a `_meta` version (-32020): refused after the body is read.
        pytest.param({}, 400, id="probe-without-version-header"),
    ],
)
def test_connection_stays_usable_or_close_is_announced_after_a_refused_post(gateway, headers, expected_status):
    url = urlsplit(gateway.url)
    body = json.dumps(PROBE).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    with socket.create_connection((url.hostname, url.port), timeout=IO_TIMEOUT_S) as sock:
        sock.settimeout(IO_TIMEOUT_S)
        sock.sendall(head)
        answered_early, _, _ = select.select([sock], [], [], EARLY_ANSWER_WINDOW_S)
        body_sent = False
        if not answered_early:
            sock.sendall(body)  # the gateway waits for the body before answering: fine
            body_sent = True
        status, response_headers, payload = read_response(sock)
        assert status == expected_status, (status, payload)

        if "close" in response_headers.get("connection", "").lower():
            return  # the server said it would close: a client will not reuse the connection

        # No `Connection: close`: the connection must take the rest of the body and then
        # the next request.
        try:
            if not body_sent:
                sock.sendall(body)
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
            status, _, payload = read_response(sock)
        except (ConnectionError, OSError) as e:
            pytest.fail(
                f"the gateway answered the POST with {expected_status} before reading its body, sent no "
                f"`Connection: close`, then dropped the connection ({e!r}); a client whose pool reuses "
                "it (the SDK's does, e.g. for `initialize` right after the refused probe) gets a read error"
            )
        assert status == 200, payload
        assert json.loads(payload)["status"] == "ok"
