"""Names two upstreams both offer, seen by a client (the official Python SDK) of a gateway
fronting server-everything: the built-in `echo` keeps its name beside server-everything's
`echo` (which becomes `everything_echo`), two remote upstreams offering `echo` are both
prefixed, and a call to a name that is not exposed says why (a collision, a prefix or a
filter) instead of blaming an unrelated upstream that happens to be down. Each collision is
logged."""

from __future__ import annotations

import re

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support import TRANSPORTS, connect, stdio_upstream, text_of, wait_for_log

pytestmark = pytest.mark.anyio

BUILTIN = '[upstreams.builtin]\nkind = "builtin"\n\n'
# A shared upstream that never starts: its command does not exist.
DOWN = '[upstreams.files]\nkind = "stdio"\ncommand = "/nonexistent/mcpgw-no-such-server"\nshare = "shared"\n\n'


async def not_found(client, name: str, arguments: dict) -> str:
    """The error message of a call to `name`, which must fail with a JSON-RPC error."""
    with pytest.raises(MCPError) as raised:
        await client.call_tool(name, arguments)
    return raised.value.message


@pytest.mark.parametrize("builtin_first", [True, False], ids=["builtin-first", "builtin-last"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_builtin_echo_keeps_its_name_beside_everythings(
    start_gateway, everything_js, transport, builtin_first
):
    everything = stdio_upstream("everything", "node", [everything_js, "stdio"])
    gw = start_gateway(BUILTIN + everything if builtin_first else everything + BUILTIN)
    with anyio.fail_after(60):
        async with connect(gw.url, transport) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"echo", "everything_echo", "add", "get-sum"} <= tools.keys(), sorted(tools)
            assert "builtin_echo" not in tools, sorted(tools)
            assert list(tools["echo"].input_schema["properties"]) == ["text"], "the built-in echo"
            assert list(tools["everything_echo"].input_schema["properties"]) == ["message"]
            assert text_of(await client.call_tool("echo", {"text": "same words"})) == "same words"
            assert text_of(await client.call_tool("everything_echo", {"message": "same words"})) == "Echo: same words"
            message = await not_found(client, "builtin_echo", {"text": "x"})
            assert message.startswith("tool not found: builtin_echo (did you mean echo?"), message
            assert "everything_echo" in message, message
    await wait_for_log(
        gw,
        re.escape(
            "name collision: tool 'echo' is offered by upstreams 'builtin' and 'everything': "
            "the built-in 'echo' keeps its name; exposed everything's as everything_echo"
        )
        if builtin_first
        else re.escape("name collision: tool 'echo' is offered by upstreams 'everything' and 'builtin'"),
    )


async def test_two_upstreams_offering_echo_are_both_prefixed_and_not_found_says_why(start_gateway, everything_js):
    config = (
        stdio_upstream("a", "node", [everything_js, "stdio"])
        + stdio_upstream("b", "node", [everything_js, "stdio"])
        + DOWN
    )
    gw = start_gateway(config)
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"a_echo", "b_echo", "a_get-sum", "b_get-sum"} <= tools, sorted(tools)
            assert "echo" not in tools, sorted(tools)
            assert text_of(await client.call_tool("b_echo", {"message": "hi"})) == "Echo: hi"
            message = await not_found(client, "echo", {"message": "hi"})
            assert message == (
                "tool not found: echo (did you mean a_echo or b_echo? 'echo' is offered by upstreams 'a' and 'b', "
                "so each is exposed with its upstream's name in front)"
            ), message
            # A name nothing explains still names the upstream that is down: it may be its.
            unknown = await not_found(client, "no-such-tool", {})
            assert unknown.startswith("tool not found: no-such-tool (unavailable now: upstream 'files'"), unknown
    await wait_for_log(
        gw,
        re.escape(
            "name collision: tool 'echo' is offered by upstreams 'a' and 'b', so none keeps that name: "
            "exposed a's as a_echo and b's as b_echo"
        ),
    )


async def test_not_found_names_the_prefix_and_the_filter(start_gateway, everything_js):
    extra = 'prefix = "ev_"\ntools_deny = ["get-sum"]\n'
    gw = start_gateway(stdio_upstream("ev", "node", [everything_js, "stdio"], extra=extra) + DOWN)
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "ev_echo" in tools and "ev_get-sum" not in tools, sorted(tools)
            message = await not_found(client, "echo", {"message": "hi"})
            assert message == (
                "tool not found: echo (did you mean ev_echo? upstream 'ev' exposes its 'echo' under that name "
                "(its prefix is 'ev_'))"
            ), message
            denied = await not_found(client, "get-sum", {"a": 1, "b": 2})
            assert denied == (
                "tool not found: get-sum (upstream 'ev' has a tool 'get-sum', but its tools_allow or tools_deny "
                "leave it out)"
            ), denied
