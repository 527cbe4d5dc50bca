// The reference server @modelcontextprotocol/server-everything as a stdio upstream of mcpgw,
// in both share modes ("session": a child per client session; "shared": one child for every
// session), through the official TypeScript SDK client over both transports: tools (with a
// name collision against the built-in `echo`), progress, sampling and elicitation answered
// by the client, resources, and a resource subscription. Then two sessions sampling at once.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TRANSPORTS, startGateway, toolText, waitForHealth, withTimeout } from './lib/gateway.mjs';
import { connectAnswering, everythingConfig, samplingResult, waitSharedUpstreamUp } from './lib/upstreams.mjs';

const DOC_URI = 'demo://resource/static/document/features.md';
const PROMPT_PREFIX = 'Resource trigger-sampling-request context: ';
const KEY = { streamable: 'streamable', sse: 'legacy' };

/** Runs `body(gw)` against a fresh gateway on `config`, then stops it (exit 0 required). */
async function withGateway(config, body) {
  const gw = await startGateway({ config });
  try {
    await body(gw);
  } catch (e) {
    e.message += `\n--- mcpgw stderr ---\n${gw.logs()}`;
    throw e;
  } finally {
    const exit = await gw.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
  }
}

/** Ends a client the way its transport does it cleanly, and waits for the gateway to forget it. */
async function closeClient(gw, kind, { client, transport }) {
  if (kind === 'streamable') await transport.terminateSession();
  await client.close();
  await waitForHealth(gw, (h) => h.sessions[KEY[kind]] === 0, { what: `no ${kind} session left` });
}

for (const share of ['session', 'shared']) {
  describe(`server-everything upstream, share = "${share}"`, () => {
    for (const kind of TRANSPORTS) {
      test(`${kind}: tools, progress, sampling, elicitation, resources, subscription`, async () => {
        await withGateway(everythingConfig(share), async (gw) => {
          if (share === 'shared') await waitSharedUpstreamUp(gw, 'everything');
          const tag = `${kind}-${share}`;
          const peer = await connectAnswering(gw, kind, tag);
          const { client, wire, errors, seen } = peer;

          // -- tools: the union of both upstreams; `echo` collides: the built-in keeps the name
          const { tools } = await client.listTools();
          const names = tools.map((t) => t.name);
          for (const name of [
            'echo',
            'everything_echo',
            'add',
            'get-sum',
            'trigger-long-running-operation',
            'trigger-sampling-request',
            'trigger-elicitation-request',
            'toggle-subscriber-updates',
          ]) {
            assert.ok(names.includes(name), `tool ${name} missing from ${JSON.stringify(names)}`);
          }
          assert.ok(!names.includes('builtin_echo'), 'the built-in tools keep their names on a collision');
          assert.equal(
            toolText(await client.callTool({ name: 'everything_echo', arguments: { message: 'hi' } })),
            'Echo: hi',
          );
          assert.equal(toolText(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'hi');
          assert.equal(
            toolText(await client.callTool({ name: 'get-sum', arguments: { a: 19, b: 23 } })),
            'The sum of 19 and 23 is 42.',
          );

          // -- progress: all three notifications reach the wire before the result (the SDK's
          //    onprogress may miss the last one, typescript-sdk#2580; see README)
          const progress = [];
          const before = wire.length;
          const result = await client.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
            undefined,
            { onprogress: (p) => progress.push(p) },
          );
          assert.match(toolText(result), /^Long running operation completed/);
          const delivered = wire.slice(before);
          const responseAt = delivered.findIndex((m) => m.result?.content?.[0]?.text?.startsWith('Long running'));
          assert.ok(responseAt >= 0, JSON.stringify(delivered));
          const notes = delivered.slice(0, responseAt).filter((m) => m.method === 'notifications/progress');
          assert.deepEqual(
            notes.map((m) => [m.params.progress, m.params.total]),
            [
              [1, 3],
              [2, 3],
              [3, 3],
            ],
            JSON.stringify(delivered),
          );
          assert.ok(progress.length >= 1, 'onprogress saw at least one notification');
          assert.deepEqual(
            progress.map((p) => p.progress),
            [1, 2, 3].slice(0, progress.length),
          );

          // -- sampling answered by this client
          const sampling = await client.callTool({
            name: 'trigger-sampling-request',
            arguments: { prompt: `prompt of ${tag}`, maxTokens: 5 },
          });
          const sampled = samplingResult(toolText(sampling));
          assert.deepEqual(sampled.content, { type: 'text', text: seen.sampled });
          assert.equal(sampled.model, `model-${tag}`);
          assert.deepEqual(seen.sampling, [`${PROMPT_PREFIX}prompt of ${tag}`]);

          // -- elicitation answered by this client
          const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
          assert.notEqual(elicited.isError, true, JSON.stringify(elicited));
          const text = elicited.content.map((c) => c.text).join('\n');
          assert.match(text, /User provided the requested information/);
          assert.ok(text.includes(`- Name: ${seen.name}`), text);
          assert.deepEqual(seen.elicitation, ['Please provide inputs for the following fields:']);

          // -- resources
          const { resources } = await client.listResources();
          const uris = resources.map((r) => r.uri);
          assert.ok(uris.includes(DOC_URI) && uris.includes('mcpgw://about'), JSON.stringify(uris));
          const read = await client.readResource({ uri: DOC_URI });
          assert.equal(read.contents.length, 1);
          assert.equal(read.contents[0].uri, DOC_URI);
          assert.match(read.contents[0].text, /^# Everything Server - Features/);
          const templated = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
          assert.match(templated.contents[0].text, /^Resource 7: This is a plaintext resource/);

          // -- subscription: switching server-everything's simulated updates on sends an
          //    update for each subscribed URI at once, then every 5 s
          assert.equal(client.getServerCapabilities()?.resources?.subscribe, true);
          const update = peer.seen.nextUpdate();
          await client.subscribeResource({ uri: DOC_URI });
          const toggled = toolText(await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} }));
          assert.match(toggled, /^Started simulated resource updated notifications/);
          assert.equal(await withTimeout(update, 8_000, `notifications/resources/updated for ${DOC_URI}`), DOC_URI);
          assert.deepEqual([...new Set(seen.updates)], [DOC_URI]);

          assert.deepEqual(errors, [], 'no transport or protocol errors');
          await closeClient(gw, kind, peer);
        });
      });
    }
  });
}

describe('two sessions sampling at once', () => {
  test('share = "session": each session answers only its own request', async () => {
    await withGateway(everythingConfig('session', { builtin: false }), async (gw) => {
      // Neither client answers until both have been asked.
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      const a = await connectAnswering(gw, 'streamable', 'A', { gate: () => released });
      const b = await connectAnswering(gw, 'sse', 'B', { gate: () => released });
      const call = (peer, tag) =>
        peer.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `from ${tag}`, maxTokens: 5 } });
      const calls = [call(a, 'A'), call(b, 'B')];
      const deadline = Date.now() + 15_000;
      while (a.seen.sampling.length === 0 || b.seen.sampling.length === 0) {
        if (Date.now() > deadline) throw new Error('both sampling requests should be pending at once');
        await new Promise((r) => setTimeout(r, 10));
      }
      release();
      const [ra, rb] = await withTimeout(Promise.all(calls), 15_000, 'both sampling calls');
      assert.equal(samplingResult(toolText(ra)).content.text, a.seen.sampled);
      assert.equal(samplingResult(toolText(rb)).content.text, b.seen.sampled);
      assert.deepEqual(a.seen.sampling, [`${PROMPT_PREFIX}from A`]);
      assert.deepEqual(b.seen.sampling, [`${PROMPT_PREFIX}from B`]);
      await closeClient(gw, 'streamable', a);
      await closeClient(gw, 'sse', b);
    });
  });

  test('share = "shared": a second concurrent caller is refused with a reason, never misrouted', async () => {
    await withGateway(everythingConfig('shared', { builtin: false }), async (gw) => {
      await waitSharedUpstreamUp(gw, 'everything');
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      const a = await connectAnswering(gw, 'streamable', 'A', { gate: () => released });
      const b = await connectAnswering(gw, 'sse', 'B');
      const call = (peer, tag) =>
        peer.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `from ${tag}`, maxTokens: 5 } });
      const callA = call(a, 'A');
      const deadline = Date.now() + 15_000;
      while (a.seen.sampling.length === 0) {
        if (Date.now() > deadline) throw new Error("A's sampling request never reached A");
        await new Promise((r) => setTimeout(r, 10));
      }
      // A's call is in flight on the shared child (its request waits at A): B calls now.
      let reason;
      try {
        const refused = await call(b, 'B');
        assert.equal(refused.isError, true, `B's concurrent call should be refused: ${JSON.stringify(refused)}`);
        reason = refused.content.map((c) => c.text).join('\n');
      } catch (e) {
        reason = String(e.message); // a JSON-RPC error is an acceptable way to refuse too
      }
      assert.match(reason, /upstream 'everything' sent sampling\/createMessage/, reason);
      assert.match(reason, /2 client sessions have calls in flight on this shared upstream/, reason);
      assert.deepEqual(b.seen.sampling, [], 'B must not be asked');
      release();
      const ra = await withTimeout(callA, 15_000, "A's sampling call");
      assert.equal(samplingResult(toolText(ra)).content.text, a.seen.sampled);
      assert.deepEqual(a.seen.sampling, [`${PROMPT_PREFIX}from A`]);
      // Alone, B is served.
      const rb = await call(b, 'B');
      assert.equal(samplingResult(toolText(rb)).content.text, b.seen.sampled);
      assert.deepEqual(b.seen.sampling, [`${PROMPT_PREFIX}from B`]);
      assert.deepEqual(a.seen.sampling, [`${PROMPT_PREFIX}from A`]);
      await closeClient(gw, 'streamable', a);
      await closeClient(gw, 'sse', b);
    });
  });
});
