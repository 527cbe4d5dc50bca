// Legacy SSE resumption through the official TypeScript SDK client (SSEClientTransport): a
// TCP proxy cuts the client's `GET /sse` event stream; its EventSource reconnects by itself,
// and the gateway is meant to put it back into the SAME session (a new `endpoint` event with
// the same sessionId, then the missed events), so the client keeps working with no new
// `initialize`.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';

import { Cutter, endpointEvents } from './lib/cutter.mjs';
import { health, startGateway, toolText, waitForHealth, withTimeout } from './lib/gateway.mjs';

// A gateway per test: a failed test can leave a session in its grace period behind.
let gw;
beforeEach(async () => {
  gw = await startGateway({ config: '' }); // the defaults: a 5 s legacy grace period
});
afterEach(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

const isSse = (c) => /^GET \/sse /.test(c.client.toString('latin1'));
const sessionOf = (endpoint) => new URL(endpoint.data, 'http://x').searchParams.get('sessionId');
const sseIds = (raw) => [...raw.toString('utf8').matchAll(/^id: ?(.*)$/gm)].map((m) => m[1]);

/**
 * Connects an SSE client through a new cutter; returns the pieces and the first stream's
 * session id. `requestInit` goes to the transport as it is (its headers are read on every
 * request, the reconnect included).
 */
async function connectThroughCutter(requestInit) {
  const cutter = await new Cutter(Number(new URL(gw.url).port)).start();
  const transport = new SSEClientTransport(new URL('/sse', cutter.url), { requestInit });
  const client = new Client({ name: 'mcpgw-ts-resume', version: '0.0.0' });
  try {
    await withTimeout(client.connect(transport), 10_000, 'the sse client to connect');
  } catch (e) {
    await cutter.close();
    throw e;
  }
  const first = cutter.conns.filter(isSse);
  assert.equal(first.length, 1, cutter.describe());
  const [endpoint] = endpointEvents(first[0].server);
  assert.ok(endpoint, `no endpoint event on the first stream: ${first[0].server}`);
  const sessionId = sessionOf(endpoint);
  assert.match(endpoint.id ?? '', new RegExp(`^${sessionId}-0-\\d+$`), 'the endpoint event carries an id');
  return { cutter, client, stream: first[0], sessionId };
}

/** Waits for the EventSource's own reconnect after a cut: the new stream with its endpoint event. */
async function reconnected(cutter, old) {
  const conn = await cutter.waitFor(
    () => cutter.conns.find((c) => isSse(c) && c.id !== old.id && endpointEvents(c.server).length > 0),
    'the reconnected event stream and its endpoint event',
  );
  const request = cutter.requests.find((r) => r.conn === conn.id);
  return { conn, request, session: sessionOf(endpointEvents(conn.server)[0]) };
}

/** The resumption the gateway promises: same session, no second handshake, one legacy session. */
async function assertSameSession(cutter, sessionId, again) {
  const facts = () =>
    JSON.stringify({ firstSession: sessionId, secondSession: again.session, requests: JSON.parse(cutter.describe()) });
  assert.equal(again.request.method, 'GET');
  assert.ok(again.request.headers['last-event-id'], `the reconnect carried no Last-Event-ID: ${facts()}`);
  assert.equal(again.session, sessionId, `the reconnect got a new session: ${facts()}`);
  const initializes = cutter.requests.filter((r) => r.method === 'POST' && r.body.includes('"initialize"'));
  assert.equal(initializes.length, 1, `exactly one initialize: ${facts()}`);
  const later = cutter.requests.filter((r) => r.method === 'POST' && r.afterCuts > 0);
  assert.ok(later.length > 0 && later.every((r) => r.path.includes(`sessionId=${sessionId}`)), facts());
  const body = await health(gw);
  assert.equal(body.sessions.legacy, 1, JSON.stringify(body));
}

async function echo(client, text, cutter) {
  const call = client.callTool({ name: 'echo', arguments: { text } });
  try {
    return toolText(await withTimeout(call, 10_000, `echo "${text}"`));
  } catch (e) {
    e.message += `; requests: ${cutter.describe()}`;
    throw e;
  }
}

// SDK 1.32.2's SSEClientTransport hands eventsource a fetch wrapper that replaces the
// request headers, dropping the Last-Event-ID the EventSource set, so on its own the SDK
// reconnects without it and lands in a new session. Kept as a todo (reported, not counted as
// a failure) until the SDK is fixed; the next test sends the header the SDK should send and
// checks that mcpgw then keeps the client in its session.
test('sse: a cut event stream reconnects into the same session (the SDK on its own)', {
  todo: 'typescript-sdk 1.32.2 SSEClientTransport drops Last-Event-ID on reconnect (dist/esm/client/sse.js fetch wrapper)',
}, async () => {
  const { cutter, client, stream, sessionId } = await connectThroughCutter();
  try {
    assert.equal(await echo(client, 'before the cut', cutter), 'before the cut');
    assert.equal(cutter.cut((c) => c === stream), 1, 'the proxy cut the event stream');
    const again = await reconnected(cutter, stream);
    assert.ok(
      again.request.headers['last-event-id'],
      `the reconnect carried no Last-Event-ID (SSEClientTransport's fetch wrapper replaces the EventSource's ` +
        `headers), so the gateway opened session ${again.session} instead of resuming ${sessionId}`,
    );
    // The client keeps working, in the same session, with no new handshake.
    assert.equal(await echo(client, 'after the cut', cutter), 'after the cut');
    await assertSameSession(cutter, sessionId, again);
  } finally {
    await client.close();
    await cutter.close();
  }
  await waitForHealth(gw, (b) => b.sessions.legacy === 0, { what: 'the legacy sessions to end after close' });
});

// SSEClientTransport 1.32.2 drops the EventSource's Last-Event-ID header (its fetch wrapper
// replaces `init.headers` with its own), so this test supplies the header the EventSource
// would have sent through `requestInit.headers`, which the transport reads on every request:
// the id of the last event the proxy forwarded to the client before the cut. That exercises
// the gateway's legacy resumption with the SDK's transport otherwise untouched, including the
// replay of events (the result of a call) sent while the client was away.
test('sse: with Last-Event-ID, a call in flight across the cut completes once, in the same session', async () => {
  const requestInit = { headers: {} };
  const { cutter, client, stream, sessionId } = await connectThroughCutter(requestInit);
  try {
    assert.equal(await echo(client, 'before the cut', cutter), 'before the cut');
    const progress = [];
    const call = client.callTool({ name: 'sleep', arguments: { ms: 1500, steps: 5 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    await cutter.waitFor(() => stream.server.includes('notifications/progress'), 'the first progress');
    assert.equal(cutter.cut((c) => c === stream), 1, 'the proxy cut the event stream');
    const seen = sseIds(stream.server);
    requestInit.headers['Last-Event-ID'] = seen.at(-1);

    const result = await withTimeout(call, 15_000, 'the sleep result').catch((e) => {
      e.message += `; requests: ${cutter.describe()}`;
      throw e;
    });
    assert.equal(toolText(result), 'slept 1500 ms');
    assert.ok(!stream.server.includes('slept 1500 ms'), 'the result came before the cut: nothing was replayed');
    const again = await reconnected(cutter, stream);
    assert.equal(again.request.headers['last-event-id'], seen.at(-1));
    const everything = Buffer.concat(cutter.conns.map((c) => c.server)).toString('utf8');
    assert.equal(everything.split('slept 1500 ms').length - 1, 1, 'the result was sent exactly once');
    // Every progress step reached the client once, in order: step 1 before the cut, the rest
    // replayed. (Checked on the wire: the SDK's Protocol runs notification handlers a
    // microtask later but responses at once, and drops the progress handler with the
    // response, so replayed progress that arrives in one burst with the result never reaches
    // `onprogress`: "Received a progress notification for an unknown token".)
    const steps = [...everything.matchAll(/"progress":([\d.]+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(steps, [1, 2, 3, 4, 5], 'every progress step on the wire once, in order');
    assert.ok(progress.length >= 1 && progress.every((v, i) => i === 0 || v > progress[i - 1]), `${progress}`);

    assert.equal(await echo(client, 'after the cut', cutter), 'after the cut');
    await assertSameSession(cutter, sessionId, again);
  } finally {
    await client.close();
    await cutter.close();
  }
  await waitForHealth(gw, (b) => b.sessions.legacy === 0, { what: 'the legacy session to end after close' });
});
