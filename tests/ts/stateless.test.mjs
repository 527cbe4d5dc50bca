// The TypeScript SDK 2.x client (@modelcontextprotocol/client) against mcpgw's /mcp in each
// of its version-negotiation modes: pinned to 2026-07-28 and `auto` speak the stateless era
// (no session is opened), `legacy` opens a session. Each lists tools, calls `echo` (the
// built-in one and server-everything's, a handshake-era stdio upstream), a tool with
// progress, reads a resource and gets a prompt.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { health, startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { everythingConfig } from './lib/upstreams.mjs';

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
    let client;
    before(async () => {
      client = new Client({ name: 'mcpgw-ts2-tests', version: '0' }, { versionNegotiation: { mode } });
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
  });
}
