"""Server→client requests of an upstream reach the right client session.

server-everything's `trigger-sampling-request` tool sends `sampling/createMessage` while its
call is in flight. In `session` mode every session has its own child, so concurrent calls
of two sessions each get their own client's answer. In `shared` mode one child serves every
session: the gateway gives its request to the one session with a call in flight on it, and
refuses it (a JSON-RPC error to the upstream, which the tool reports) when several sessions
have calls in flight. Either way no session ever sees a request meant for another. The
last test repeats this with an upstream that asks the instant a call reaches it."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from support import Answers, connect, sampling_result, stdio_upstream, text_of, wait_shared_upstreams_up

pytestmark = pytest.mark.anyio

PROMPT_PREFIX = "Resource trigger-sampling-request context: "
STDIO_SERVER = Path(__file__).resolve().parent / "fixtures" / "stdio_server.py"


def config(everything_js, share: str) -> str:
    return "[sessions]\nlegacy_grace_secs = 0\n\n" + stdio_upstream(
        "everything", "node", [everything_js, "stdio"], share=share
    )


class Gated(Answers):
    """Answers sampling only once `release` is set, after noting that the request arrived."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.arrived = anyio.Event()
        self.release = anyio.Event()

    async def sampling(self, context, params):
        self.arrived.set()
        with anyio.fail_after(15):
            await self.release.wait()
        return await super().sampling(context, params)


async def call_sampling(client, tag: str, into: dict) -> None:
    try:
        into[tag] = await client.call_tool("trigger-sampling-request", {"prompt": f"from {tag}", "maxTokens": 5})
    except MCPError as e:  # a JSON-RPC error is an acceptable way to refuse too
        into[tag] = e


@pytest.mark.parametrize(
    "transports", [("streamable", "streamable"), ("sse", "sse"), ("streamable", "sse")], ids=lambda t: "+".join(t)
)
async def test_session_mode_concurrent_sampling_stays_in_each_session(start_gateway, everything_js, transports):
    gw = start_gateway(config(everything_js, "session"))
    a, b = Gated("A"), Gated("B")
    results: dict = {}
    with anyio.fail_after(60):
        async with connect(gw.url, transports[0], **a.options()) as client_a:
            async with connect(gw.url, transports[1], **b.options()) as client_b:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_sampling, client_a, "A", results)
                    tg.start_soon(call_sampling, client_b, "B", results)
                    # Both sampling requests are pending at their clients at the same time.
                    with anyio.fail_after(15):
                        await a.arrived.wait()
                        await b.arrived.wait()
                    a.release.set()
                    b.release.set()
    for me in (a, b):
        result = results[me.tag]
        assert not isinstance(result, MCPError), f"session {me.tag}: {result}"
        sampled = sampling_result(text_of(result))
        assert sampled["content"]["text"] == me.sampled, (me.tag, sampled)
        assert me.sampling_prompts == [f"{PROMPT_PREFIX}from {me.tag}"], (me.tag, me.sampling_prompts)


async def test_shared_mode_sampling_goes_to_the_only_caller(start_gateway, everything_js):
    """Two sessions on one shared child; only B calls: B answers, A is never asked."""
    gw = start_gateway(config(everything_js, "shared"))
    await wait_shared_upstreams_up(gw, "everything")
    a, b = Answers("A"), Answers("B")
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable", **a.options()) as client_a:
            async with connect(gw.url, "sse", **b.options()) as client_b:
                # A is a live member of the shared upstream's audience
                assert "trigger-sampling-request" in {t.name for t in (await client_a.list_tools()).tools}
                result = await client_b.call_tool("trigger-sampling-request", {"prompt": "from B", "maxTokens": 5})
                assert sampling_result(text_of(result))["content"]["text"] == b.sampled
                result = await client_a.call_tool("trigger-sampling-request", {"prompt": "from A", "maxTokens": 5})
                assert sampling_result(text_of(result))["content"]["text"] == a.sampled
    assert b.sampling_prompts == [f"{PROMPT_PREFIX}from B"], b.sampling_prompts
    assert a.sampling_prompts == [f"{PROMPT_PREFIX}from A"], a.sampling_prompts


async def test_shared_mode_concurrent_sampling_is_refused_not_misrouted(start_gateway, everything_js):
    """A's sampling request is pending at A when B calls the tool too. B's request cannot be
    tied to one session (two sessions have calls in flight on the shared child), so the
    gateway refuses it with -32603 and a reason, and the tool reports that error to B. A is
    never asked B's question, and still gets its own answer. Alone, B then succeeds."""
    gw = start_gateway(config(everything_js, "shared"))
    await wait_shared_upstreams_up(gw, "everything")
    a, b = Gated("A"), Gated("B")
    b.release.set()  # B would answer at once, if it were ever asked
    results: dict = {}
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable", **a.options()) as client_a:
            async with connect(gw.url, "streamable", **b.options()) as client_b:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_sampling, client_a, "A", results)
                    with anyio.fail_after(15):
                        await a.arrived.wait()
                    # A's call is in flight (its sampling request waits at A): now B calls.
                    await call_sampling(client_b, "B", results)
                    a.release.set()

                refused = results["B"]
                if isinstance(refused, MCPError):
                    reason = refused.message
                else:
                    assert refused.is_error, f"B's concurrent call should have been refused: {refused}"
                    reason = "\n".join(c.text for c in refused.content if c.type == "text")
                assert "-32603" in reason or isinstance(refused, MCPError), reason
                assert "upstream 'everything' sent sampling/createMessage" in reason, reason
                assert "2 client sessions have calls in flight on this shared upstream" in reason, reason

                accepted = results["A"]
                assert not isinstance(accepted, MCPError), accepted
                assert sampling_result(text_of(accepted))["content"]["text"] == a.sampled
                assert a.sampling_prompts == [f"{PROMPT_PREFIX}from A"], a.sampling_prompts
                assert b.sampling_prompts == [], f"B was asked: {b.sampling_prompts}"

                # B alone: its request is tied to it.
                await call_sampling(client_b, "B", results)
                assert sampling_result(text_of(results["B"]))["content"]["text"] == b.sampled
                assert b.sampling_prompts == [f"{PROMPT_PREFIX}from B"], b.sampling_prompts
                assert a.sampling_prompts == [f"{PROMPT_PREFIX}from A"], a.sampling_prompts


async def test_shared_mode_requests_sent_at_once_are_tied_to_their_call(start_gateway):
    """An upstream that asks the moment a call arrives (`fixtures/stdio_server.py`'s
    `sample_now`) leaves the gateway no slack between forwarding the call and receiving the
    request: each request must still be tied to its call. Alone, B is always served; while
    A has a call in flight, B is always refused, and A is never asked B's questions."""
    upstream = stdio_upstream("victim", sys.executable, [STDIO_SERVER], share="shared")
    gw = start_gateway("[sessions]\nlegacy_grace_secs = 0\n\n" + upstream)
    await wait_shared_upstreams_up(gw, "victim")
    a, b = Gated("A"), Answers("B")
    rounds = 40
    with anyio.fail_after(60):
        async with connect(gw.url, "streamable", **a.options()) as client_a:
            async with connect(gw.url, "sse", **b.options()) as client_b:
                for i in range(rounds):
                    result = await client_b.call_tool("sample_now", {"prompt": f"B alone {i}"})
                    assert text_of(result) == b.sampled, (i, text_of(result))
                assert b.sampling_prompts == [f"B alone {i}" for i in range(rounds)]

                results: dict = {}

                async def call_a() -> None:
                    results["A"] = await client_a.call_tool("sample_now", {"prompt": "A"})

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call_a)
                    with anyio.fail_after(15):
                        await a.arrived.wait()
                    for i in range(rounds):
                        text = text_of(await client_b.call_tool("sample_now", {"prompt": f"B busy {i}"}))
                        assert text.startswith("refused: upstream 'victim' sent sampling/createMessage: "), (i, text)
                        assert "2 client sessions have calls in flight" in text, (i, text)
                    a.release.set()
                assert text_of(results["A"]) == a.sampled
                assert a.sampling_prompts == ["A"], a.sampling_prompts
                assert len(b.sampling_prompts) == rounds, "B must not be asked while A's call is in flight"
