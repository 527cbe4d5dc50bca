// The TypeScript SDK 2.x client (@modelcontextprotocol/client) against mcpgw's /mcp in each
// of its version-negotiation modes: pinned to 2026-07-28 and `auto` speak the stateless era
// (no session is opened), `legacy` opens a session. Each lists tools, calls `echo` (the
// built-in one and server-everything's, a handshake-era stdio upstream), a tool with
// progress, reads a resource and gets a prompt, of both upstreams; and answers
// server-everything's sampling and elicitation from its own handlers (as input-required
// results in the modern modes, as requests on its session in `legacy`).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { health, startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { everythingConfig, samplingResult } from './lib/upstreams.mjs';

const DOC_URI = 'demo://resource/static/document/features.md';

const MODES = [
  { name: 'pinned to 2026-07-28', mode: { pin: '2026-07-28' }, version: '2026-07-28', sessions: 0 },
  { name: 'auto', mode: 'auto', version: '2026-07-28', sessions: 0 },
  { name: 'legacy', mode: 'legacy', version: '2025-11-25', sessions: 1 },
];

let gw;
before(async () => {
  gw = await startGateway({ config: everythingConfig('shared') });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

for (const { name, mode, version, sessions } of MODES) {
  describe(`the 2.x client, ${name}`, () => {
    const seen = { sampling: [], elicitation: [] };
    let client;
    before(async () => {
      client = new Client(
        { name: 'mcpgw-ts2-tests', version: '0' },
        { capabilities: { sampling: {}, elicitation: {} }, versionNegotiation: { mode } },
      );
      client.setRequestHandler('sampling/createMessage', async (request) => {
        seen.sampling.push(request.params.messages[0].content.text);
        return { model: 'model-ts2', role: 'assistant', content: { type: 'text', text: `sampled for ${name}` } };
      });
      client.setRequestHandler('elicitation/create', async (request) => {
        seen.elicitation.push(request.params.message);
        return { action: 'accept', content: { name: 'Ada', check: true } };
      });
      await withTimeout(client.connect(new StreamableHTTPClientTransport(gw.mcpUrl)), 30_000, 'connect');
    });
    after(async () => {
      await client.close();
    });

    test(`speaks ${version}, with ${sessions ? 'a session' : 'no session'}`, async () => {
      assert.equal(client.getNegotiatedProtocolVersion(), version);
      assert.equal((await health(gw)).sessions.streamable, sessions);
    });

    test('lists and calls tools of the built-in upstream and of a handshake-era stdio upstream', async () => {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      for (const expected of ['echo', 'add', 'sleep', 'everything_echo', 'get-sum']) {
        assert.ok(tools.includes(expected), `${expected} in ${tools}`);
      }
      assert.equal(toolText(await client.callTool({ name: 'echo', arguments: { text: 'built in' } })), 'built in');
      const echoed = await client.callTool({ name: 'everything_echo', arguments: { message: 'hi' } });
      assert.equal(toolText(echoed), 'Echo: hi');
    });

    test('a tool with progress, a resource, a prompt', async () => {
      const progress = [];
      const slept = await client.callTool(
        { name: 'sleep', arguments: { ms: 150, steps: 3 } },
        { onprogress: (p) => progress.push(p.progress) },
      );
      assert.equal(toolText(slept), 'slept 150 ms');
      assert.deepEqual(progress, [1, 2, 3]);
      const read = await client.readResource({ uri: 'mcpgw://about' });
      assert.match(read.contents[0].text, /mcpgw/);
      const prompt = await client.getPrompt({ name: 'greeting', arguments: { name: 'Ada' } });
      assert.match(prompt.messages[0].content.text, /Ada/);
    });

    test("a handshake-era upstream's progress and resource", async () => {
      const progress = [];
      const result = await withTimeout(
        client.callTool(
          { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
          { onprogress: (p) => progress.push([p.progress, p.total]), timeout: 30_000 },
        ),
        30_000,
        'callTool trigger-long-running-operation',
      );
      assert.match(toolText(result), /^Long running operation completed/);
      // The SDK may hand over the response before the last notification of the same read.
      assert.ok(progress.length >= 1, 'onprogress was called');
      assert.deepEqual(
        progress,
        [
          [1, 3],
          [2, 3],
          [3, 3],
        ].slice(0, progress.length),
      );
      const read = await withTimeout(client.readResource({ uri: DOC_URI }), 30_000, 'readResource');
      assert.equal(read.contents[0].uri, DOC_URI);
      assert.match(read.contents[0].text, /^# Everything Server - Features/);
    });

    test("a handshake-era upstream's sampling and elicitation, answered by the client's handlers", async () => {
      const sampling = await withTimeout(
        client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: `from ${name}`, maxTokens: 5 } }),
        30_000,
        'callTool trigger-sampling-request',
      );
      assert.deepEqual(samplingResult(toolText(sampling)).content, { type: 'text', text: `sampled for ${name}` });
      assert.deepEqual(seen.sampling, [`Resource trigger-sampling-request context: from ${name}`]);
      const elicited = await withTimeout(
        client.callTool({ name: 'trigger-elicitation-request', arguments: {} }),
        30_000,
        'callTool trigger-elicitation-request',
      );
      const text = elicited.content.map((c) => c.text ?? '').join('\n');
      assert.notEqual(elicited.isError, true, text);
      assert.match(text, /- Name: Ada/);
      assert.deepEqual(seen.elicitation, ['Please provide inputs for the following fields:']);
    });
  });
}
