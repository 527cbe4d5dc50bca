"""Fixtures for the end-to-end tests: the real `mcpgw` binary, started per test.

The gateway is started with `--listen 127.0.0.1:0` and an explicit `--config` file (from
the test's `gateway_config` marker, else an empty file: the embedded defaults), in a
temporary working directory so no `config/mcpgw.toml` is picked up by accident. The
fixture reads stderr until the `listening on http://…` line (bounded), keeps draining it
in a thread (so the gateway never blocks on a full pipe), and at teardown sends SIGTERM
and checks that the process exits 0 within a deadline.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import Gateway

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "mcpgw"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gateway_config(toml): TOML text written to the config file the gateway is started with"
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mcpgw_bin() -> Path:
    """The gateway binary: $MCPGW_BIN, else target/debug/mcpgw. Missing is a failure, not a skip."""
    path = Path(os.environ.get("MCPGW_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"mcpgw binary not found or not executable at {path} "
            f"(set MCPGW_BIN, or build it: `cd {REPO_ROOT} && make build`)",
            pytrace=False,
        )
    return path


@pytest.fixture
def gateway(request: pytest.FixtureRequest, mcpgw_bin: Path, tmp_path: Path) -> Iterator[Gateway]:
    """A fresh gateway for this test; `gateway.url` is its base URL (http://127.0.0.1:PORT)."""
    marker = request.node.get_closest_marker("gateway_config")
    config_text = marker.args[0] if marker else ""
    config_path = tmp_path / "mcpgw.toml"
    config_path.write_text(config_text)
    gw = Gateway(mcpgw_bin, config_path, tmp_path)
    try:
        yield gw
    finally:
        code = gw.stop()
        # Shown by pytest only when the test fails.
        print(f"---- mcpgw stderr (exit status {code}) ----\n{gw.log_text()}")
    assert code == 0, f"mcpgw exited with status {code} after SIGTERM"


# ---- upstream tests: configs written at run time, server-everything, remote fixture servers ----

EVERYTHING_JS = (
    REPO_ROOT / "tests" / "ts" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def everything_js() -> Path:
    """server-everything's entry point (an npm package, installed with the TypeScript suite's
    dependencies). Missing is a failure with the command that installs it, not a skip."""
    if not EVERYTHING_JS.is_file():
        pytest.fail(
            f"{EVERYTHING_JS} is missing: the upstream tests run @modelcontextprotocol/server-everything "
            f"from the TypeScript suite's node_modules; install it with `cd {REPO_ROOT} && make deps-ts`",
            pytrace=False,
        )
    if shutil.which("node") is None:
        pytest.fail("`node` is not on PATH: the upstream tests run server-everything with Node.js", pytrace=False)
    return EVERYTHING_JS


@pytest.fixture
def start_gateway(mcpgw_bin: Path, tmp_path: Path) -> Iterator[Callable[[str], Gateway]]:
    """A factory: `start_gateway(toml_text)` starts a gateway on that configuration (written at
    run time, for configs that name paths or ports). Every gateway it started is stopped with
    SIGTERM at teardown, which must exit 0; a test may stop one itself first (`gw.stop()`)."""
    started: list[Gateway] = []

    def start(config_text: str) -> Gateway:
        workdir = tmp_path / f"gateway-{len(started)}"
        workdir.mkdir()
        config_path = workdir / "mcpgw.toml"
        config_path.write_text(config_text)
        gw = Gateway(mcpgw_bin, config_path, workdir)
        started.append(gw)
        return gw

    yield start
    bad = []
    for gw in started:
        code = gw.stop()
        print(f"---- mcpgw stderr (exit status {code}) ----\n{gw.log_text()}")
        if code != 0:
            bad.append(code)
    assert not bad, f"mcpgw exited with status {bad} after SIGTERM"


class RemoteServers:
    """The fixture MCP servers over HTTP (`fixtures/remote_server.py`), started on demand,
    one per transport ("http", "sse"), each on a port the kernel picked."""

    START_TIMEOUT_S = 60.0  # importing the SDK takes seconds on a loaded machine

    def __init__(self) -> None:
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._urls: dict[str, str] = {}

    def url(self, kind: str) -> str:
        if kind not in self._urls:
            self._urls[kind] = self._start(kind)
        return self._urls[kind]

    def _start(self, kind: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(FIXTURES / "remote_server.py"), kind],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._procs[kind] = proc
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, name=f"remote-{kind}", daemon=True).start()
        try:
            line = lines.get(timeout=self.START_TIMEOUT_S)
        except queue.Empty:
            line = None
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+/\w+)", line or "")
        if not match:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"fixtures/remote_server.py {kind} did not start within {self.START_TIMEOUT_S} s:\n{err}")
        return match.group(1)

    def stop(self) -> None:
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def remote_servers() -> Iterator[RemoteServers]:
    servers = RemoteServers()
    try:
        yield servers
    finally:
        servers.stop()
