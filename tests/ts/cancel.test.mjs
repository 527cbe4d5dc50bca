// Cancelling a call through mcpgw reaches the upstream: tests/fixture (`mcpgw-fixture --http`,
// both eras) as an http upstream, its `test_wait_for_cancel` tool waiting for the cancellation
// and logging it on stderr. A handshake-era client (the SDK 1.x client, both transports) aborts
// the call: it sends `notifications/cancelled`, which mcpgw forwards. A 2026-07-28 client (the
// SDK 2.x client pinned to it) cancels by closing the call's stream, which mcpgw must turn into
// a cancel upstream.
//
// The bound here is generous (the machine is shared); without a cancel the tool would wait
// 60 s. Each test reports the latency it measured (from the abort to the upstream's log line).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

import { TRANSPORTS, connectClient, startGateway, withTimeout } from './lib/gateway.mjs';
import { startFixture } from './lib/fixture.mjs';
import { tomlString } from './lib/upstreams.mjs';

const CANCEL_SEEN_MS = 5_000;
const OP_TIMEOUT_MS = 15_000;

let fixture;
let gw;
before(async () => {
  fixture = await startFixture();
  gw = await startGateway({
    config: [
      '[sessions]',
      'legacy_grace_secs = 0',
      '',
      '[upstreams.fixture]',
      'kind = "http"',
      `url = ${tomlString(fixture.url)}`,
      '',
    ].join('\n'),
  });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
  await fixture.stop();
});

/**
 * Starts `test_wait_for_cancel` with `call(signal)`, waits until the upstream runs it, aborts, and
 * returns how long the upstream took to see the cancel (ms); the call itself must reject.
 */
async function cancelMidCall(t, call) {
  const mark = fixture.mark();
  const abort = new AbortController();
  const pending = call(abort.signal);
  pending.catch(() => {}); // awaited below, after the abort
  await fixture.waitForLog(/test_wait_for_cancel started/, OP_TIMEOUT_MS, mark);
  const abortedAt = performance.now();
  abort.abort();
  await assert.rejects(withTimeout(pending, OP_TIMEOUT_MS, 'the aborted call to settle'));
  const seen = await fixture.waitForLog(/test_wait_for_cancel cancelled/, CANCEL_SEEN_MS, mark);
  const latency = seen.at - abortedAt;
  t.diagnostic(`the upstream saw the cancel ${latency.toFixed(1)} ms after the abort`);
  assert.ok(
    !fixture.logs().split('\n').slice(mark).some((l) => /test_wait_for_cancel finished/.test(l)),
    'the call ran to its end upstream',
  );
  return latency;
}

for (const kind of TRANSPORTS) {
  describe(`a handshake-era client (SDK 1.x, ${kind}) aborts a call`, () => {
    let client;
    before(async () => {
      ({ client } = await connectClient(gw, kind));
    });
    after(async () => {
      await client?.close();
    });

    test('the upstream gets the cancel', async (t) => {
      await cancelMidCall(t, (signal) =>
        client.callTool({ name: 'test_wait_for_cancel', arguments: { ms: 60_000 } }, CallToolResultSchema, {
          signal,
          timeout: 120_000,
        }),
      );
    });
  });
}

describe('a 2026-07-28 client (SDK 2.x, pinned) aborts a call', () => {
  let client;
  let connectError;
  before(async () => {
    const candidate = new Client2(
      { name: 'mcpgw-cancel-tests', version: '0.0.0' },
      { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    try {
      await withTimeout(candidate.connect(new Transport2(new URL(gw.mcpUrl))), OP_TIMEOUT_MS, 'connect');
      client = candidate;
    } catch (error) {
      connectError = error;
    }
  });
  after(async () => {
    await client?.close();
  });

  test('closing its stream cancels the call upstream', async (t) => {
    if (connectError) throw connectError;
    await cancelMidCall(t, (signal) =>
      client.callTool({ name: 'test_wait_for_cancel', arguments: { ms: 60_000 } }, { signal, timeout: 120_000 }),
    );
  });
});
