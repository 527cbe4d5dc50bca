"""The reference server `@modelcontextprotocol/server-everything` as a stdio upstream, in both
share modes (a child per client session, and one child for every session), through the
official Python SDK client in a session over both transports and statelessly (its default
mode): tools (with a name collision against the built-in `echo`, which keeps its name;
test_collisions.py has the details), progress, sampling and elicitation answered by the
client, resources and a resource subscription."""

from __future__ import annotations

import warnings

import anyio
import pytest
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.subscriptions import ResourceUpdated

from support import (
    Answers,
    all_text,
    connect,
    sampling_result,
    stdio_upstream,
    text_of,
    wait_for_counts,
    wait_shared_upstreams_up,
)

pytestmark = pytest.mark.anyio

SHARES = ("session", "shared")
V2026 = "2026-07-28"
# A static resource of server-everything (a file of its docs/ directory).
DOC_URI = "demo://resource/static/document/features.md"


def everything_config(everything_js, share: str) -> str:
    return (
        "[sessions]\nlegacy_grace_secs = 0\n\n"
        '[upstreams.builtin]\nkind = "builtin"\n\n'
        + stdio_upstream("everything", "node", [everything_js, "stdio"], share=share)
    )


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize(
    ("transport", "mode"), [("streamable", "legacy"), ("sse", "legacy"), ("streamable", "auto")]
)
async def test_everything_tour(start_gateway, everything_js, transport, mode, share):
    """`legacy`: a session, the upstream's sampling and elicitation sent on it. `auto` (the
    SDK's default): stateless 2026-07-28 requests, sampling and elicitation reaching the client
    as input-required results, the resource updates on a `subscriptions/listen` stream."""
    gw = start_gateway(everything_config(everything_js, share))
    if share == "shared":
        await wait_shared_upstreams_up(gw, "everything")
    me = Answers(f"{transport}-{mode}-{share}")
    with anyio.fail_after(60):
        async with connect(gw.url, transport, mode=mode, **me.options()) as client:
            assert (client.protocol_version == V2026) == (mode == "auto"), client.protocol_version
            # -- tools: the union of both upstreams
            tools = {t.name: t for t in (await client.list_tools()).tools}
            expected = {
                "echo",
                "everything_echo",
                "add",
                "sleep",
                "get-sum",
                "trigger-long-running-operation",
                "trigger-sampling-request",
                "trigger-elicitation-request",
                "toggle-subscriber-updates",
            }
            assert expected <= tools.keys(), sorted(tools)
            assert "builtin_echo" not in tools, "the built-in tools keep their names on a collision"
            assert text_of(await client.call_tool("everything_echo", {"message": "hi"})) == "Echo: hi"
            assert text_of(await client.call_tool("echo", {"text": "hi"})) == "hi"
            assert text_of(await client.call_tool("get-sum", {"a": 19, "b": 23})) == "The sum of 19 and 23 is 42."
            assert text_of(await client.call_tool("add", {"a": 1, "b": 2})) == "3"

            # -- progress, mapped back to this client's token
            progress: list[tuple[float, float | None]] = []
            all_progress = anyio.Event()

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append((value, total))
                if len(progress) == 3:
                    all_progress.set()

            result = await client.call_tool(
                "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
            )
            assert "Long running operation completed" in text_of(result)
            with anyio.fail_after(5):
                await all_progress.wait()
            assert sorted(progress) == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)], progress

            # -- sampling: the upstream asks this client, the tool returns the client's answer
            result = await client.call_tool(
                "trigger-sampling-request", {"prompt": f"prompt of {me.tag}", "maxTokens": 5}
            )
            sampled = sampling_result(text_of(result))
            assert sampled["content"] == {"type": "text", "text": me.sampled}, sampled
            assert sampled["model"] == f"model-{me.tag}"
            assert me.sampling_prompts == [f"Resource trigger-sampling-request context: prompt of {me.tag}"]

            # -- elicitation
            result = await client.call_tool("trigger-elicitation-request", {})
            assert not result.is_error, result
            text = all_text(result)
            assert "User provided the requested information" in text, text
            assert f"- Name: {me.name}" in text, text
            assert me.elicitations == ["Please provide inputs for the following fields:"]

            # -- resources
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            assert DOC_URI in uris and "mcpgw://about" in uris, uris
            read = await client.read_resource(DOC_URI)
            assert len(read.contents) == 1, read
            assert str(read.contents[0].uri) == DOC_URI
            assert read.contents[0].text.startswith("# Everything Server - Features"), read.contents[0].text[:80]
            templated = await client.read_resource("demo://resource/dynamic/text/7")
            assert templated.contents[0].text.startswith("Resource 7: This is a plaintext resource"), templated

            # -- subscription: server-everything sends an update for each subscribed URI when
            #    its simulated updates are switched on, then every 5 s.
            assert client.server_capabilities.resources and client.server_capabilities.resources.subscribe
            if mode == "auto":
                async with client.listen(resource_subscriptions=[DOC_URI]) as sub:
                    assert list(sub.honored.resource_subscriptions or []) == [DOC_URI], sub.honored
                    toggled = text_of(await client.call_tool("toggle-subscriber-updates", {}))
                    assert toggled.startswith("Started simulated resource updated notifications"), toggled
                    with anyio.fail_after(8):
                        event = await anext(sub)
                    assert isinstance(event, ResourceUpdated) and event.uri == DOC_URI, event
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await client.subscribe_resource(DOC_URI)
                toggled = text_of(await client.call_tool("toggle-subscriber-updates", {}))
                assert toggled.startswith("Started simulated resource updated notifications"), toggled
                with anyio.fail_after(8):
                    await me.update_seen.wait()
                assert set(me.updated) == {DOC_URI}, me.updated
        await wait_for_counts(gw.url, legacy=0, streamable=0)


async def test_session_child_gets_the_clients_capabilities(start_gateway, everything_js):
    """In `session` mode the child is initialized with the client's own capabilities:
    server-everything registers its sampling and elicitation tools only for clients that can
    answer them."""
    gw = start_gateway(everything_config(everything_js, "session"))
    with anyio.fail_after(30):
        async with connect(gw.url, "streamable") as plain:
            names = {t.name for t in (await plain.list_tools()).tools}
            assert "everything_echo" in names, sorted(names)
            assert "trigger-sampling-request" not in names, sorted(names)
            assert "trigger-elicitation-request" not in names, sorted(names)
        me = Answers("capable")
        async with connect(gw.url, "streamable", **me.options()) as capable:
            names = {t.name for t in (await capable.list_tools()).tools}
            assert {"trigger-sampling-request", "trigger-elicitation-request"} <= names, sorted(names)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_concurrent_calls_each_get_all_their_progress_before_their_result(start_gateway, everything_js, mode):
    """Twenty calls with progress at once through one upstream child, ten times over: each
    gets every one of its progress notifications. While one call's progress is on its way,
    the upstream connection also sends the other calls' requests; the gateway once lost a
    notification then, or let the call's result overtake it (its stream had ended when the
    notification came), as test_everything_tour[streamable-auto-session] did once in CI."""
    gw = start_gateway(everything_config(everything_js, "session"))
    steps, calls, rounds = 5, 20, 10
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable", mode=mode) as client:

            async def one(missed: list[tuple[int, list[float]]], n: int) -> None:
                progress: list[float] = []
                every = anyio.Event()

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append(value)
                    if len(progress) == steps:
                        every.set()

                args = {"duration": 0.02, "steps": steps}
                result = await client.call_tool("trigger-long-running-operation", args, progress_callback=on_progress)
                assert "Long running operation completed" in text_of(result)
                # The SDK runs progress callbacks on tasks of their own: they may run after
                # the result is returned, never later than that by much.
                with anyio.move_on_after(5):
                    await every.wait()
                if sorted(progress) != [float(s) for s in range(1, steps + 1)]:
                    missed.append((n, progress))

            for _ in range(rounds):
                missed: list[tuple[int, list[float]]] = []
                async with anyio.create_task_group() as tg:
                    for n in range(calls):
                        tg.start_soon(one, missed, n)
                assert not missed, f"calls that missed progress: {missed}"
