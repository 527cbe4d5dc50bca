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
from collections.abc import Iterator
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
