// Streamable HTTP session termination: after `terminateSession()` (DELETE), the old
// session id is dead; the spec says requests carrying it MUST get HTTP 404.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { connectClient, startGateway, toolText, waitForHealth, withTimeout } from './lib/gateway.mjs';

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

/** The headers the SDK sends on a POST after initialize, with `sessionId`. */
function sessionHeaders(sessionId, protocolVersion) {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': protocolVersion,
  };
}

describe('terminateSession', () => {
  let client;
  let transport;
  let sessionId;
  let protocolVersion;

  before(async () => {
    ({ client, transport } = await connectClient(gw, 'streamable'));
    sessionId = transport.sessionId;
    protocolVersion = transport.protocolVersion;
    assert.ok(sessionId, 'the gateway assigned an Mcp-Session-Id');
    assert.ok(protocolVersion, 'a protocol version was negotiated');
    const result = await client.callTool({ name: 'echo', arguments: { text: 'before' } });
    assert.equal(toolText(result), 'before');

    // Sanity check of the raw request used below: while the session is live it works.
    const live = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: sessionHeaders(sessionId, protocolVersion),
      body: JSON.stringify({ jsonrpc: '2.0', id: 'raw-live', method: 'ping' }),
    });
    const liveBody = await live.text();
    assert.equal(live.status, 200, `a raw ping on the live session: ${liveBody}`);
    assert.match(liveBody, /"raw-live"/);

    await withTimeout(transport.terminateSession(), 5_000, 'terminateSession (DELETE)');
  });
  after(async () => {
    await client.close();
  });

  test('the DELETE succeeds and the SDK forgets the session id', async () => {
    assert.equal(transport.sessionId, undefined);
    await waitForHealth(gw, (b) => b.sessions.streamable === 0, {
      what: 'the terminated session to leave /healthz',
    });
  });

  test('a raw POST with the old mcp-session-id gets HTTP 404', async () => {
    const response = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: sessionHeaders(sessionId, protocolVersion),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    const body = await response.text();
    assert.equal(response.status, 404, `POST with a terminated session id answered ${response.status}: ${body}`);
  });

  test('a raw GET (standalone stream) with the old mcp-session-id gets HTTP 404', async () => {
    const response = await fetch(gw.mcpUrl, {
      method: 'GET',
      headers: {
        accept: 'text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': protocolVersion,
      },
    });
    await response.body?.cancel();
    assert.equal(response.status, 404);
  });

  test('a second DELETE with the old mcp-session-id gets HTTP 404', async () => {
    const response = await fetch(gw.mcpUrl, {
      method: 'DELETE',
      headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion },
    });
    await response.body?.cancel();
    assert.equal(response.status, 404);
  });

  test('an SDK client resuming the old session id errors with 404', async () => {
    // A preset sessionId makes connect() skip initialize (SDK reconnect path).
    const resumed = new StreamableHTTPClientTransport(gw.mcpUrl, { sessionId });
    const stale = new Client({ name: 'mcpgw-ts-tests-stale', version: '0.0.0' });
    await stale.connect(resumed);
    try {
      await assert.rejects(
        stale.callTool({ name: 'echo', arguments: { text: 'too late' } }),
        (e) => {
          assert.ok(e instanceof StreamableHTTPError, `expected a StreamableHTTPError, got ${e}`);
          assert.equal(e.code, 404, `expected HTTP 404, got ${e.code}: ${e.message}`);
          return true;
        },
      );
    } finally {
      await stale.close();
    }
  });

  test('the terminated client itself can no longer call tools', async () => {
    await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'after' } }));
  });

  test('a fresh client gets a new session and works', async () => {
    const fresh = await connectClient(gw, 'streamable');
    try {
      assert.ok(fresh.transport.sessionId);
      assert.notEqual(fresh.transport.sessionId, sessionId);
      const result = await fresh.client.callTool({ name: 'add', arguments: { a: 40, b: 2 } });
      assert.equal(toolText(result), '42');
    } finally {
      await fresh.transport.terminateSession();
      await fresh.client.close();
    }
  });
});
