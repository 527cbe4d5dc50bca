// The modern-only upstream (fixtures/modern-server.mjs: the TypeScript SDK 2.x server with
// `legacy: 'reject'`), first on its own, to prove the fixture serves what the gateway tests rely
// on and refuses the handshake era, then behind mcpgw (`era` left at its default, `auto`), where
// every TypeScript client of the matrix (lib/clients.mjs: the 2.x client pinned to 2026-07-28, in
// `auto` and in `legacy` mode; the 1.x client on Streamable HTTP and on legacy SSE) reaches its
// tools through the gateway: mcpgw speaks 2026-07-28 to it (a session's connection after the
// upstream refused its `initialize`, the stateless hub's after `server/discover`). The
// elicitation tool answers with an `InputRequiredResult`: a handshake-era client gets it as an
// ordinary elicitation request on its session (mcpgw retries the call with the answer), a
// modern client as an `InputRequiredResult` whose `requestState` mcpgw sealed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { CLIENTS, connectMatrixClient } from './lib/clients.mjs';
import { startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { startModernServer } from './lib/modern.mjs';
import { tomlString } from './lib/upstreams.mjs';

const OP_TIMEOUT_MS = 15_000;
const MODERN = '2026-07-28';

/** A 2.x client in `mode` that answers elicitation with the name `Ada`, connected to `url`. */
async function connect2(url, mode) {
  const client = new Client(
    { name: 'mcpgw-modern-upstream-tests', version: '0.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode } },
  );
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'Ada' } }));
  await withTimeout(client.connect(new StreamableHTTPClientTransport(new URL(url))), OP_TIMEOUT_MS, 'connect');
  return client;
}

let upstream;
before(async () => {
  upstream = await startModernServer();
});
after(async () => {
  const exit = await upstream.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `modern-server should exit 0 on SIGTERM\n${upstream.logs()}`);
});

/** The checks every client of the modern upstream's tools makes, directly or through mcpgw. */
function usesTheModernTools(client) {
  test('listTools has the upstream tools', async () => {
    const { tools } = await withTimeout(client().listTools(), OP_TIMEOUT_MS, 'listTools');
    const names = tools.map((t) => t.name);
    for (const name of ['modern_echo', 'modern_progress', 'modern_ask_name']) {
      assert.ok(names.includes(name), `tool ${name} missing from ${JSON.stringify(names)}`);
    }
  });

  test('modern_echo returns its text', async () => {
    const text = 'hello, modern upstream ✓';
    const result = await withTimeout(
      client().callTool({ name: 'modern_echo', arguments: { text } }),
      OP_TIMEOUT_MS,
      'callTool modern_echo',
    );
    assert.equal(toolText(result), text);
  });

  test('modern_progress reports 3 progress notifications', async () => {
    const progress = [];
    const result = await withTimeout(
      client().callTool(
        { name: 'modern_progress', arguments: { steps: 3 } },
        { onprogress: (p) => progress.push(p), timeout: OP_TIMEOUT_MS },
      ),
      OP_TIMEOUT_MS,
      'callTool modern_progress',
    );
    assert.equal(toolText(result), 'done');
    assert.ok(progress.length >= 1, 'onprogress was called');
    assert.deepEqual(
      progress.map((p) => [p.progress, p.total]),
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ].slice(0, progress.length),
    );
  });

  test("modern_ask_name is answered by the client's elicitation handler", async () => {
    const result = await withTimeout(
      client().callTool({ name: 'modern_ask_name', arguments: {} }),
      OP_TIMEOUT_MS,
      'callTool modern_ask_name',
    );
    assert.equal(toolText(result), 'Hello, Ada!');
  });

  test('readResource modern://about', async () => {
    const { contents } = await withTimeout(
      client().readResource({ uri: 'modern://about' }),
      OP_TIMEOUT_MS,
      'readResource',
    );
    assert.equal(contents[0]?.text, 'mcpgw modern-only fixture', JSON.stringify(contents));
  });
}

describe('the modern-only upstream on its own', () => {
  let client;
  before(async () => {
    client = await connect2(upstream.url, { pin: MODERN });
  });
  after(async () => {
    await client?.close();
  });

  test(`serves a client pinned to ${MODERN}`, () => {
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(client.getServerVersion()?.name, 'mcpgw-modern-fixture');
  });

  usesTheModernTools(() => client);

  test('refuses the handshake era (-32022, naming 2026-07-28)', async () => {
    await assert.rejects(connect2(upstream.url, 'legacy'), (error) => {
      assert.match(String(error?.message), /-32022/);
      assert.match(String(error?.message), /2026-07-28/);
      return true;
    });
  });
});

for (const spec of CLIENTS) {
  describe(`mcpgw fronting the modern-only upstream, ${spec.name}`, () => {
    let gw;
    let client;
    let connectError;
    const connected = () => {
      if (connectError) throw connectError;
      return client;
    };

    before(async () => {
      gw = await startGateway({
        config: [
          '[sessions]',
          'legacy_grace_secs = 0',
          '',
          '[upstreams.modern]',
          'kind = "http"',
          `url = ${tomlString(upstream.url)}`,
          '',
        ].join('\n'),
      });
      try {
        client = await connectMatrixClient(gw, spec, { elicit: () => ({ action: 'accept', content: { name: 'Ada' } }) });
      } catch (error) {
        connectError = error;
      }
    });
    after(async () => {
      await client?.close();
      const exit = await gw.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
    });

    test(`connects in the ${spec.era} era`, () => {
      assert.equal(connected().era(), spec.era);
    });

    usesTheModernTools(connected);

    test('mcpgw connected to the upstream in its modern era, with no retry', () => {
      const logs = gw.logs();
      assert.match(logs, /upstream connected upstream=modern kind="http" era="modern"/, logs);
      assert.doesNotMatch(logs, /could not be started|restarting/, logs);
    });
  });
}
