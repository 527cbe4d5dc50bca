"""A client's bearer token never reaches an upstream: the gateway authenticates it and keeps
it (MCP authorization: a server MUST NOT pass the token it received through). The remote
fixture (`fixtures/remote_server.py`) records the headers of every request it receives; a
client with a token calls a tool through mcpgw, over both transports and to both remote
upstream kinds, and the token is in none of them."""

from __future__ import annotations

import hashlib
import json

import anyio
import pytest

from support import TRANSPORTS, Recorder, connect, text_of, toml_string

pytestmark = pytest.mark.anyio

TOKEN = "client-secret-token-4f1c"


class WithToken(Recorder):
    """A recorder whose HTTP clients send `Authorization: Bearer TOKEN`."""

    def http_client(self, headers=None, timeout=None, auth=None):
        return super().http_client({**(headers or {}), "authorization": f"Bearer {TOKEN}"}, timeout, auth)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", ("http", "sse"))
async def test_the_clients_token_never_reaches_the_upstream(start_gateway, remote_servers, kind, transport):
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    gw = start_gateway(
        f'[auth]\ntoken_sha256 = ["{digest}"]\n\n'
        f'[upstreams.remote]\nkind = "{kind}"\nurl = {toml_string(remote_servers.url(kind))}\nshare = "session"\n'
    )
    with anyio.fail_after(60):
        async with connect(gw.url, transport, recorder=WithToken()) as client:
            assert text_of(await client.call_tool("py_multiply", {"a": 6, "b": 7})) == "42"
            seen = json.loads(text_of(await client.call_tool("py_seen_headers", {})))
    assert seen, "the upstream saw the gateway's requests"
    for headers in seen:
        assert "authorization" not in headers, headers
        assert not any(TOKEN in value for value in headers.values()), headers
