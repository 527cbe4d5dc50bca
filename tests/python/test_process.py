"""The binary's process contract: once it has logged `listening on …`, SIGTERM stops it
cleanly (exit status 0), however soon the signal comes."""

from __future__ import annotations

from support import Gateway

ATTEMPTS = 20


def test_sigterm_right_after_the_listening_line_exits_0(mcpgw_bin, tmp_path):
    """A supervisor (systemd, Kubernetes, a test harness) may stop the gateway as soon as
    it reports ready. Each attempt sends SIGTERM the moment the listening line is read."""
    config = tmp_path / "mcpgw.toml"
    config.write_text("")
    codes = []
    for _ in range(ATTEMPTS):
        gw = Gateway(mcpgw_bin, config, tmp_path)
        codes.append(gw.stop())
    assert codes == [0] * ATTEMPTS, (
        f"exit statuses {codes}; -15 means the process died of SIGTERM's default action, "
        "i.e. the signal arrived before the gateway listened for it"
    )
