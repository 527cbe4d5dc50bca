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

import { CLIENTS, callWithProgress, connectMatrixClient } from './lib/clients.mjs';
import { startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { startModernServer } from './lib/modern.mjs';
import { everythingConfig, tomlString } from './lib/upstreams.mjs';

const OP_TIMEOUT_MS = 15_000;
const MODERN = '2026-07-28';
const ABOUT = 'modern://about';

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
    const result = await callWithProgress(
      client(),
      { name: 'modern_progress', arguments: { steps: 3 } },
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ],
      OP_TIMEOUT_MS,
    );
    assert.equal(toolText(result), 'done');
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

    // 2026-07-28 has no resources/subscribe: mcpgw subscribes on a subscriptions/listen stream
    // of the upstream's, for a session's resources/subscribe as for a modern client's listen.
    test(`the upstream's resource updates reach the client (${
      spec.era === 'modern' ? 'subscriptions/listen' : 'resources/subscribe'
    })`, async () => {
      const c = connected();
      let updated;
      const update = new Promise((resolveUpdate) => {
        updated = resolveUpdate;
      });
      let subscription;
      if (spec.era === 'modern') {
        c.raw.setNotificationHandler('notifications/resources/updated', (n) => updated(n.params.uri));
        subscription = await withTimeout(
          c.raw.listen({ resourceSubscriptions: [ABOUT] }),
          OP_TIMEOUT_MS,
          'listen for modern://about',
        );
        assert.deepEqual(subscription.honoredFilter, { resourceSubscriptions: [ABOUT] });
      } else {
        c.onResourceUpdated(updated);
        await withTimeout(c.subscribeResource({ uri: ABOUT }), OP_TIMEOUT_MS, 'subscribeResource');
      }
      const touched = await withTimeout(c.callTool({ name: 'modern_touch', arguments: {} }), OP_TIMEOUT_MS, 'touch');
      assert.equal(toolText(touched), 'touched');
      assert.equal(await withTimeout(update, OP_TIMEOUT_MS, 'notifications/resources/updated'), ABOUT);
      await subscription?.close();
    });

    test('mcpgw connected to the upstream in its modern era, with no retry', () => {
      const logs = gw.logs();
      assert.match(logs, /upstream connected upstream=modern kind="http" era="modern"/, logs);
      assert.doesNotMatch(logs, /could not be started|restarting/, logs);
    });
  });
}

// A modern upstream that offers no resource subscriptions, beside one that does
// (server-everything, so the gateway advertises `resources.subscribe`): a session's
// resources/subscribe for its resource is refused with a reason (not the upstream's bare
// -32601 for a method 2026-07-28 removed), and a listen does not honour its URI.
describe('mcpgw fronting a modern upstream without resource subscriptions', () => {
  let plain;
  let gw;
  before(async () => {
    plain = await startModernServer({ args: ['--no-subscriptions'] });
    gw = await startGateway({
      config: [
        everythingConfig('shared', { builtin: false }),
        '[upstreams.modern]',
        'kind = "http"',
        `url = ${tomlString(plain.url)}`,
        '',
      ].join('\n'),
    });
  });
  after(async () => {
    const exit = await gw.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
    await plain.stop();
  });

  for (const spec of [CLIENTS[3], CLIENTS[0]]) {
    test(`${spec.name}: a subscription to its resource is refused with a reason`, async () => {
      const client = await connectMatrixClient(gw, spec);
      try {
        if (spec.era === 'modern') {
          const subscription = await withTimeout(
            client.raw.listen({ resourceSubscriptions: [ABOUT], toolsListChanged: true }),
            OP_TIMEOUT_MS,
            'listen',
          );
          assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
          await subscription.close();
        } else {
          assert.equal(client.raw.getServerCapabilities()?.resources?.subscribe, true);
          await assert.rejects(client.subscribeResource({ uri: ABOUT }), (error) => {
            assert.equal(error.code, -32602, String(error));
            assert.match(
              String(error.message),
              /upstream 'modern' cannot send updates of modern:\/\/about: it offers no resource subscriptions/,
            );
            return true;
          });
        }
      } finally {
        await client.close();
      }
    });
  }
});
