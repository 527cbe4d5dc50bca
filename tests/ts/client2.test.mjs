// The TypeScript SDK 2.x client (`@modelcontextprotocol/client` 2.4.0) against mcpgw's built-in
// tools over Streamable HTTP, in each of its version-negotiation modes:
// - `legacy` (its default): the `initialize` handshake, a session;
// - `auto`: a `server/discover` probe first, the 2026-07-28 era if the server offers it, else
//   `initialize` (only definitive modern evidence selects the modern era);
// - `{ pin: '2026-07-28' }`: the modern era or nothing.
// Each lists tools, calls `echo`, calls `sleep` with progress, and reads `mcpgw://about`.
//
// `auto` and the pin settle on the modern era (mcpgw answers `server/discover` and serves 2026-07-28
// requests statelessly); each mode is asserted to settle on its era and to get the same results.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { NO_GRACE_CONFIG, startGateway, toolText, withTimeout } from './lib/gateway.mjs';

/** Bound on every client operation, so a hung exchange fails the test clearly. */
const OP_TIMEOUT_MS = 15_000;
const MODERN = '2026-07-28';

const MODES = [
  { name: 'legacy', mode: 'legacy', era: 'legacy' },
  { name: 'auto', mode: 'auto', era: 'modern' },
  { name: `pinned to ${MODERN}`, mode: { pin: MODERN }, era: 'modern' },
];

let gw;
before(async () => {
  gw = await startGateway({ config: NO_GRACE_CONFIG });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

for (const { name, mode, era } of MODES) {
  describe(`TypeScript SDK 2.x client, ${name}`, () => {
    /** The connected client, or the error connecting it (each test reports it). */
    let client;
    let connectError;

    /** The client, connected once for the whole block; rethrows a failed connect in each test. */
    function connected() {
      if (connectError) throw connectError;
      return client;
    }

    before(async () => {
      const candidate = new Client(
        { name: `mcpgw-client2-${era}`, version: '0.0.0' },
        { capabilities: {}, versionNegotiation: { mode } },
      );
      try {
        const transport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl));
        await withTimeout(candidate.connect(transport), OP_TIMEOUT_MS, `connect (${name})`);
        client = candidate;
      } catch (error) {
        connectError = new Error(`connect (${name}) failed: ${error?.message ?? error}`, { cause: error });
        await candidate.close().catch(() => {});
      }
    });
    after(async () => {
      await client?.close();
    });

    test(`connects in the ${era} era and reports mcpgw`, () => {
      const c = connected();
      assert.equal(c.getProtocolEra(), era);
      if (era === 'modern') assert.equal(c.getNegotiatedProtocolVersion(), MODERN);
      else assert.match(c.getNegotiatedProtocolVersion() ?? '', /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(c.getServerVersion()?.name, 'mcpgw');
    });

    test('listTools includes echo and sleep', async () => {
      const { tools } = await withTimeout(connected().listTools(), OP_TIMEOUT_MS, 'listTools');
      const names = tools.map((t) => t.name);
      for (const tool of ['echo', 'sleep']) {
        assert.ok(names.includes(tool), `tool ${tool} missing from ${JSON.stringify(names)}`);
      }
    });

    test('callTool echo returns the same text', async () => {
      const text = `hello from the 2.x client (${name}) — ünïcødé ✓`;
      const result = await withTimeout(
        connected().callTool({ name: 'echo', arguments: { text } }),
        OP_TIMEOUT_MS,
        'callTool echo',
      );
      assert.notEqual(result.isError, true, JSON.stringify(result));
      assert.equal(toolText(result), text);
    });

    test('callTool sleep with steps: 3 reports progress through onprogress', async () => {
      const progress = [];
      const result = await withTimeout(
        connected().callTool(
          { name: 'sleep', arguments: { ms: 150, steps: 3 } },
          { onprogress: (p) => progress.push(p), timeout: OP_TIMEOUT_MS },
        ),
        OP_TIMEOUT_MS,
        'callTool sleep',
      );
      assert.notEqual(result.isError, true, JSON.stringify(result));
      // The SDK may hand over the response before the last progress notification of the same
      // read (it dispatches notifications later); each one it reports is in order, of 3.
      assert.ok(progress.length >= 1, 'onprogress was called');
      assert.deepEqual(
        progress.map((p) => p.progress),
        [1, 2, 3].slice(0, progress.length),
        `onprogress saw ${JSON.stringify(progress)}`,
      );
      for (const p of progress) assert.equal(p.total, 3);
    });

    test('readResource mcpgw://about returns text/plain', async () => {
      const { contents } = await withTimeout(
        connected().readResource({ uri: 'mcpgw://about' }),
        OP_TIMEOUT_MS,
        'readResource',
      );
      assert.equal(contents.length, 1, JSON.stringify(contents));
      assert.equal(contents[0].uri, 'mcpgw://about');
      assert.equal(contents[0].mimeType, 'text/plain');
      assert.match(contents[0].text, /mcpgw/);
    });
  });
}
