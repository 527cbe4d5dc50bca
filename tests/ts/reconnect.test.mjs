// Reconnects: a clean close then a new client; a dirty close (connection dropped with a
// call in flight, no DELETE) then a new client; and both transports live at once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

import {
  NO_GRACE_CONFIG,
  TRANSPORTS,
  connectClient,
  health,
  startGateway,
  toolText,
  waitForHealth,
  withTimeout,
} from './lib/gateway.mjs';

const KEY = { streamable: 'streamable', sse: 'legacy' };

let gw;
before(async () => {
  gw = await startGateway({ config: NO_GRACE_CONFIG });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

/** Closes a client the clean way: DELETE first on Streamable (close() alone only aborts). */
async function cleanClose({ client, transport }, kind) {
  if (kind === 'streamable') await transport.terminateSession();
  await client.close();
}

async function echo(client, text) {
  return toolText(await client.callTool({ name: 'echo', arguments: { text } }));
}

/** Waits for a request the SDK has sent to be visible: the gateway's progress on it. */
function firstProgress() {
  let resolve;
  const seen = new Promise((r) => {
    resolve = r;
  });
  return { seen, onprogress: () => resolve() };
}

for (const kind of TRANSPORTS) {
  describe(`${kind}: reconnect`, () => {
    test('clean close, then a new client works', async () => {
      const first = await connectClient(gw, kind);
      assert.equal(await echo(first.client, 'first'), 'first');
      const firstSession = first.transport.sessionId;
      await cleanClose(first, kind);
      await waitForHealth(gw, (b) => b.sessions[KEY[kind]] === 0, {
        what: `the closed ${kind} session to end`,
      });

      const second = await connectClient(gw, kind);
      try {
        assert.equal(await echo(second.client, 'second'), 'second');
        if (kind === 'streamable') assert.notEqual(second.transport.sessionId, firstSession);
        const body = await health(gw);
        assert.equal(body.sessions[KEY[kind]], 1, JSON.stringify(body));
      } finally {
        await cleanClose(second, kind);
      }
      await waitForHealth(gw, (b) => b.sessions[KEY[kind]] === 0, {
        what: `the second ${kind} session to end`,
      });
    });

    test('dirty close with a call in flight, then a new client works', async () => {
      const first = await connectClient(gw, kind);
      const firstSession = first.transport.sessionId;
      // A long call that reports progress at once, so we know it is running server-side.
      const { seen, onprogress } = firstProgress();
      const inFlight = first.client
        .callTool({ name: 'sleep', arguments: { ms: 30_000, steps: 300 } }, CallToolResultSchema, {
          onprogress,
          timeout: 60_000,
        })
        .then(
          () => 'resolved',
          (e) => e,
        );
      await withTimeout(seen, 5_000, 'the first progress of the in-flight sleep');

      // Drop the connection: abort every fetch, no DELETE, no cancellation.
      await first.client.close();
      const outcome = await withTimeout(inFlight, 5_000, 'the in-flight call to settle after close');
      assert.ok(outcome instanceof Error, `the in-flight call should reject after close, got ${outcome}`);

      const second = await connectClient(gw, kind);
      try {
        assert.equal(await echo(second.client, 'after a dirty close'), 'after a dirty close');
        const sum = await second.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
        assert.equal(toolText(sum), '2');
        if (kind === 'streamable') assert.notEqual(second.transport.sessionId, firstSession);
      } finally {
        await cleanClose(second, kind);
      }

      if (kind === 'sse') {
        // Legacy (grace 0): a dropped event stream ends its session.
        await waitForHealth(gw, (b) => b.sessions.legacy === 0, { what: 'the dropped legacy session to end' });
      } else {
        // Streamable: a dropped connection is not the end of a session (only DELETE or
        // expiry is), so the old session is still there and usable; then end it properly
        // (terminateSession throws unless the DELETE gets 2xx).
        const resumed = new StreamableHTTPClientTransport(gw.mcpUrl, { sessionId: firstSession });
        const stale = new Client({ name: 'mcpgw-ts-tests-resumed', version: '0.0.0' });
        await stale.connect(resumed);
        assert.equal(await echo(stale, 'resumed'), 'resumed');
        await resumed.terminateSession();
        await stale.close();
        await waitForHealth(gw, (b) => b.sessions.streamable === 0, {
          what: 'the dropped streamable session to end after DELETE',
        });
      }
    });
  });
}

describe('both transports at once', () => {
  let streamable;
  let legacy;

  before(async () => {
    [streamable, legacy] = await Promise.all([connectClient(gw, 'streamable'), connectClient(gw, 'sse')]);
  });
  after(async () => {
    await Promise.all([cleanClose(streamable, 'streamable'), cleanClose(legacy, 'sse')]);
    await waitForHealth(gw, (b) => b.sessions.legacy === 0 && b.sessions.streamable === 0, {
      what: 'both sessions to end',
    });
  });

  test('both sessions are live', async () => {
    const body = await health(gw);
    assert.deepEqual(body.sessions, { legacy: 1, streamable: 1, parked: 0 });
  });

  test('interleaved sequential calls each get their own answer', async () => {
    for (let i = 0; i < 10; i++) {
      assert.equal(await echo(streamable.client, `s${i}`), `s${i}`);
      assert.equal(await echo(legacy.client, `l${i}`), `l${i}`);
      const s = await streamable.client.callTool({ name: 'add', arguments: { a: i, b: 100 } });
      const l = await legacy.client.callTool({ name: 'add', arguments: { a: i, b: 200 } });
      assert.equal(toolText(s), String(i + 100));
      assert.equal(toolText(l), String(i + 200));
    }
  });

  test('concurrent calls on both, with progress, do not cross', async () => {
    const progress = { streamable: [], legacy: [] };
    const calls = [];
    for (let i = 0; i < 5; i++) {
      calls.push(echo(streamable.client, `S-${i}`).then((t) => assert.equal(t, `S-${i}`)));
      calls.push(echo(legacy.client, `L-${i}`).then((t) => assert.equal(t, `L-${i}`)));
    }
    const sleeps = [
      streamable.client.callTool({ name: 'sleep', arguments: { ms: 100, steps: 2 } }, CallToolResultSchema, {
        onprogress: (p) => progress.streamable.push(p.progress),
      }),
      legacy.client.callTool({ name: 'sleep', arguments: { ms: 100, steps: 2 } }, CallToolResultSchema, {
        onprogress: (p) => progress.legacy.push(p.progress),
      }),
    ];
    await Promise.all(calls);
    const [s, l] = await Promise.all(sleeps);
    assert.match(toolText(s), /100/);
    assert.match(toolText(l), /100/);
    // The last progress may be dropped by the SDK (see basics.test.mjs); the first cannot.
    assert.ok(progress.streamable.length >= 1 && progress.streamable[0] === 1, JSON.stringify(progress));
    assert.ok(progress.legacy.length >= 1 && progress.legacy[0] === 1, JSON.stringify(progress));
  });

  test('closing one leaves the other working', async () => {
    await cleanClose(legacy, 'sse');
    await waitForHealth(gw, (b) => b.sessions.legacy === 0, { what: 'the legacy session to end' });
    assert.equal(await echo(streamable.client, 'still fine'), 'still fine');
    legacy = await connectClient(gw, 'sse');
    assert.equal(await echo(legacy.client, 'back'), 'back');
  });
});
