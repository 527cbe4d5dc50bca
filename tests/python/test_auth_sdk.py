"""The Python SDK's own OAuth support gets a token starting from mcpgw's 401 and then calls
tools, over both transports: the 401's `resource_metadata`, mcpgw's protected resource
metadata (RFC 9728), the authorization server's metadata, and the client credentials grant
with the resource indicator (RFC 8707), against a real authorization server
(`tests/auth/server.mjs`: oidc-provider).

The SDK accepts metadata only for the URL it connects to, so the gateway's `resource` must be
its real address, known before it starts: the test binds the listening socket itself and hands
it to mcpgw as systemd does (LISTEN_FDS), the port still picked by the kernel."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from support import TRANSPORTS, Gateway, Recorder, connect, text_of

pytestmark = pytest.mark.anyio

AUTH_DIR = Path(__file__).resolve().parents[1] / "auth"
START_TIMEOUT_S = 60.0


class ActivatedGateway(Gateway):
    """A gateway serving on `sock`, handed over as an inherited listening socket (fd 3)."""

    def __init__(self, binary: Path, config_path: Path, workdir: Path, sock: socket.socket) -> None:
        self.log = []
        self._lines = queue.Queue()
        env = dict(os.environ)
        env.setdefault("MCPGW_LOG", "info")
        script = 'exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@"'
        self.proc = subprocess.Popen(
            ["sh", "-c", script, str(binary), "--config", str(config_path)],
            cwd=workdir,
            env=env,
            stdin=sock.fileno(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._drain, name="mcpgw-stderr", daemon=True)
        self._reader.start()
        self.url = self._wait_listening()


class AuthServer:
    """tests/auth/server.mjs for `resource`: the authorization server's issuer URL."""

    def __init__(self, resource: str) -> None:
        node = AUTH_DIR / "node_modules" / ".bin" / "node"
        if not node.exists():
            pytest.fail(f"{node} is missing: run `make deps-auth` (npm ci in tests/auth)", pytrace=False)
        self.proc = subprocess.Popen(
            [str(node), str(AUTH_DIR / "server.mjs"), resource],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0]:
            self.stop()
            pytest.fail(f"tests/auth/server.mjs did not start within {START_TIMEOUT_S} s")
        self.issuer = json.loads(line[0])["issuer"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


class Memory:
    """Token storage in memory (the SDK's `TokenStorage`)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class WithOAuth(Recorder):
    """A recorder whose HTTP clients authenticate with `auth`."""

    def __init__(self, auth: ClientCredentialsOAuthProvider) -> None:
        super().__init__()
        self.auth = auth

    def http_client(self, headers=None, timeout=None, auth=None):
        return super().http_client(headers, timeout, self.auth)


@pytest.fixture
def oauth_gateway(mcpgw_bin: Path, tmp_path: Path) -> Iterator[tuple[ActivatedGateway, AuthServer]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The base URL as the resource: the SDK wants it to prefix the URL it connects to, and
    # legacy SSE clients connect to /sse (docs/configuration.md, `resource`).
    server = AuthServer(f"{base}/")
    config = tmp_path / "mcpgw.toml"
    config.write_text(
        f'[auth]\nresource = "{base}/"\nrequired_scopes = ["mcp:tools"]\n'
        f'[[auth.issuers]]\nissuer = "{server.issuer}"\naccess_token_type = true\n'
    )
    gw = ActivatedGateway(mcpgw_bin, config, tmp_path, sock)
    sock.close()
    try:
        yield gw, server
    finally:
        code = gw.stop()
        server.stop()
        print(f"---- mcpgw stderr (exit status {code}) ----\n{gw.log_text()}")
        assert code == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_sdk_gets_a_token_from_the_401_and_calls_tools(oauth_gateway, transport):
    gw, server = oauth_gateway
    path = "/mcp" if transport == "streamable" else "/sse"
    provider = ClientCredentialsOAuthProvider(
        server_url=f"{gw.url}{path}",
        storage=(storage := Memory()),
        client_id="alice",
        client_secret="alice-secret",
        token_endpoint_auth_method="client_secret_post",
        scope="mcp:tools",
        issuer=server.issuer,
    )
    recorder = WithOAuth(provider)
    with anyio.fail_after(60):
        async with connect(gw.url, transport, recorder=recorder) as client:
            assert text_of(await client.call_tool("echo", {"text": "authorized"})) == "authorized"
    assert storage.tokens is not None, "the SDK got a token"
    statuses = [e.status for e in recorder.exchanges]
    assert 401 in statuses, f"it started from a 401: {statuses}"
