"""Per-identity tool policy through the Python SDK: a session opened with a bearer token
lists only what the policy lets its caller see, under the names it gives them, and a
renamed tool with a pinned argument calls the original; another caller of the same
upstream sees the upstream as it is. Over both transports, and statelessly (2026-07-28,
the SDK's "auto" mode)."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from support import Recorder, connect, text_of

pytestmark = pytest.mark.anyio


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""
[auth.tokens]
alice = "{digest("alice-token")}"
bob = "{digest("bob-token")}"

[upstreams.builtin]
kind = "builtin"

[[policy.rules]]
tokens = ["bob"]
upstream = "builtin"
tools = ["sleep"]
effect = "deny"

[[policy.rules]]
tokens = ["bob"]
upstream = "builtin"
tools = ["add"]
rename = "plus"
pin = {{ a = 40 }}
"""


class WithToken(Recorder):
    """A recorder whose HTTP clients send `Authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def http_client(self, headers=None, timeout=None, auth=None):
        return super().http_client({**(headers or {}), "authorization": f"Bearer {self.token}"}, timeout, auth)


@pytest.mark.gateway_config(CONFIG)
@pytest.mark.parametrize(("transport", "mode"), [("streamable", "legacy"), ("sse", "legacy"), ("streamable", "auto")])
async def test_each_caller_lists_what_the_policy_lets_it_see(gateway, transport, mode):
    with anyio.fail_after(60):
        async with connect(gateway.url, transport, mode=mode, recorder=WithToken("bob-token")) as bob:
            tools = {tool.name: tool for tool in (await bob.list_tools()).tools}
            assert "plus" in tools and "echo" in tools, sorted(tools)
            assert "sleep" not in tools and "add" not in tools, sorted(tools)
            assert "a" not in tools["plus"].input_schema["properties"], tools["plus"].input_schema
            assert text_of(await bob.call_tool("plus", {"b": 2})) == "42"
        async with connect(gateway.url, transport, mode=mode, recorder=WithToken("alice-token")) as alice:
            names = {tool.name for tool in (await alice.list_tools()).tools}
            assert {"sleep", "add", "echo"} <= names and "plus" not in names, sorted(names)
