// `subscriptions/listen` through mcpgw with the TypeScript SDK 2.x client's own `listen()`, in
// the modes that speak 2026-07-28 (pinned and `auto`): the gateway honours the list-change kinds
// asked for, a tools change of the upstream (tests/fixture on stdio, one connection per hub
// proxy) reaches the client's `notifications/tools/list_changed` handler, `close()` ends the
// subscription at the gateway, and SIGTERM ends an open one gracefully (the listen result).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { fixtureBinary } from './lib/fixture.mjs';
import { startGateway, withTimeout } from './lib/gateway.mjs';
import { tomlString } from './lib/upstreams.mjs';

const OP_TIMEOUT_MS = 15_000;
const MODES = [
  { name: 'pinned to 2026-07-28', mode: { pin: '2026-07-28' } },
  { name: 'auto', mode: 'auto' },
];

/** A gateway fronting the fixture on stdio, one child per hub connection. */
function config() {
  return ['[upstreams.fixture]', 'kind = "stdio"', `command = ${tomlString(fixtureBinary())}`, 'share = "session"', ''].join(
    '\n',
  );
}

async function connect(gw, mode) {
  const client = new Client({ name: 'mcpgw-ts-listen', version: '0' }, { versionNegotiation: { mode } });
  await withTimeout(client.connect(new StreamableHTTPClientTransport(gw.mcpUrl)), OP_TIMEOUT_MS, 'connect');
  assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
  return client;
}

for (const { name, mode } of MODES) {
  describe(`the 2.x client's listen(), ${name}`, () => {
    let gw;
    let client;
    before(async () => {
      gw = await startGateway({ config: config() });
      client = await connect(gw, mode);
    });
    after(async () => {
      await client.close();
      const exit = await gw.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
    });

    test('a tools change of the upstream reaches the listener that asked for it', async () => {
      let changed;
      const heard = new Promise((resolve) => {
        changed = resolve;
      });
      client.setNotificationHandler('notifications/tools/list_changed', () => changed());
      const subscription = await withTimeout(client.listen({ toolsListChanged: true }), OP_TIMEOUT_MS, 'listen');
      assert.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
      await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
      await withTimeout(heard, OP_TIMEOUT_MS, 'notifications/tools/list_changed on the listen stream');
      await subscription.close();
      assert.equal(await withTimeout(subscription.closed, OP_TIMEOUT_MS, 'the subscription to close'), 'local');
    });

    test('SIGTERM ends an open subscription gracefully', async () => {
      const subscription = await withTimeout(client.listen({ promptsListChanged: true }), OP_TIMEOUT_MS, 'listen');
      assert.deepEqual(subscription.honoredFilter, { promptsListChanged: true });
      const exit = await gw.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, gw.logs());
      assert.equal(await withTimeout(subscription.closed, OP_TIMEOUT_MS, 'the subscription to end'), 'graceful');
    });
  });
}
