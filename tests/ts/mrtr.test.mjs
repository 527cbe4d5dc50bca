// The TypeScript SDK 2.x client (`@modelcontextprotocol/client`) in its modern modes (`auto`, and
// pinned to 2026-07-28) through mcpgw to server-everything over stdio, a handshake-era upstream
// that asks its client to sample and to elicit during a call. The client speaks 2026-07-28
// statelessly, so mcpgw answers each such call with an InputRequiredResult (the upstream's request
// and a sealed requestState) while the upstream call waits; the client answers from its own
// handlers and retries, and the tool's result is built from those answers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { everythingConfig, samplingResult } from './lib/upstreams.mjs';

const OP_TIMEOUT_MS = 30_000;
const MODERN = '2026-07-28';
const MODES = [
  { name: 'auto', mode: 'auto' },
  { name: `pinned to ${MODERN}`, mode: { pin: MODERN } },
];

let gw;
before(async () => {
  gw = await startGateway({ config: everythingConfig('session', { builtin: false }) });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

for (const { name, mode } of MODES) {
  describe(`TypeScript SDK 2.x client, ${name}, sampling and elicitation through input-required results`, () => {
    const seen = { sampling: [], elicitation: [] };
    let client;

    before(async () => {
      client = new Client(
        { name: 'mcpgw-mrtr', version: '0.0.0' },
        { capabilities: { sampling: {}, elicitation: {} }, versionNegotiation: { mode } },
      );
      client.setRequestHandler('sampling/createMessage', async (request) => {
        seen.sampling.push(request.params.messages[0].content.text);
        return { model: 'model-ts', role: 'assistant', content: { type: 'text', text: `sampled for ${name}` } };
      });
      client.setRequestHandler('elicitation/create', async (request) => {
        seen.elicitation.push(request.params.message);
        return { action: 'accept', content: { name: 'Ada', check: true } };
      });
      await withTimeout(client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl))), OP_TIMEOUT_MS, 'connect');
    });
    after(async () => {
      await client?.close();
    });

    test('speaks 2026-07-28', () => {
      assert.equal(client.getProtocolEra(), 'modern');
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    });

    test("the sampling tool's result is the client's own answer", async () => {
      const result = await withTimeout(
        client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'from ts', maxTokens: 5 } }),
        OP_TIMEOUT_MS,
        'callTool trigger-sampling-request',
      );
      const sampled = samplingResult(toolText(result));
      assert.deepEqual(sampled.content, { type: 'text', text: `sampled for ${name}` });
      assert.deepEqual(seen.sampling, ['Resource trigger-sampling-request context: from ts']);
    });

    test("the elicitation tool's result carries the client's answer", async () => {
      const result = await withTimeout(
        client.callTool({ name: 'trigger-elicitation-request', arguments: {} }),
        OP_TIMEOUT_MS,
        'callTool trigger-elicitation-request',
      );
      const text = result.content.map((c) => c.text ?? '').join('\n');
      assert.ok(!result.isError, text);
      assert.match(text, /- Name: Ada/);
      assert.deepEqual(seen.elicitation, ['Please provide inputs for the following fields:']);
    });
  });
}
