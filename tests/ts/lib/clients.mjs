// The TypeScript clients of the test matrix (docs/testing.md), behind one shape, so a suite can
// run the same checks with each: the SDK 2.x client (`@modelcontextprotocol/client`) pinned to
// 2026-07-28, in `auto` and in `legacy` mode (all on Streamable HTTP), and the SDK 1.x client
// (`@modelcontextprotocol/sdk`) on Streamable HTTP and on legacy HTTP+SSE. The two SDKs differ
// in how handlers are set and where `callTool` takes its options; the wrapper hides only that.

import { Client as Client2, StreamableHTTPClientTransport as Streamable2 } from '@modelcontextprotocol/client';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as Streamable1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import assert from 'node:assert/strict';

import { withTimeout } from './gateway.mjs';

const MODERN = '2026-07-28';
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * The clients, each `{ name, sdk, mode | transport, era }`: `era` is the one it settles on
 * against mcpgw (`modern`: stateless 2026-07-28 requests; `legacy`: a session).
 */
export const CLIENTS = [
  { name: `SDK 2.x pinned to ${MODERN}`, sdk: 2, mode: { pin: MODERN }, era: 'modern' },
  { name: 'SDK 2.x auto', sdk: 2, mode: 'auto', era: 'modern' },
  { name: 'SDK 2.x legacy', sdk: 2, mode: 'legacy', era: 'legacy' },
  { name: 'SDK 1.x Streamable HTTP', sdk: 1, transport: 'streamable', era: 'legacy' },
  { name: 'SDK 1.x legacy SSE', sdk: 1, transport: 'sse', era: 'legacy' },
];

/**
 * `spec` (one of `CLIENTS`) connected to the gateway `gw`, declaring sampling and elicitation
 * and answering them with `answers.sample(params)` / `answers.elicit(params)` (each returns
 * the result). Returns `{ raw, era, listTools, callTool(params, { onprogress }), readResource,
 * subscribeResource, onResourceUpdated(fn), close }`, and for SDK 1.x `wire` (every message the
 * transport delivered).
 */
export async function connectMatrixClient(gw, spec, answers = {}) {
  const capabilities = { sampling: {}, elicitation: {} };
  const sample = answers.sample ?? (() => ({ model: 'm', role: 'assistant', content: { type: 'text', text: '' } }));
  const elicit = answers.elicit ?? (() => ({ action: 'decline' }));
  let updated = () => {};
  if (spec.sdk === 2) {
    const client = new Client2(
      { name: 'mcpgw-matrix', version: '0.0.0' },
      { capabilities, versionNegotiation: { mode: spec.mode } },
    );
    client.setRequestHandler('sampling/createMessage', async (request) => sample(request.params));
    client.setRequestHandler('elicitation/create', async (request) => elicit(request.params));
    if (spec.era === 'legacy') {
      client.setNotificationHandler('notifications/resources/updated', (n) => updated(n.params.uri));
    }
    await withTimeout(client.connect(new Streamable2(new URL(gw.mcpUrl))), CONNECT_TIMEOUT_MS, `connect (${spec.name})`);
    return {
      raw: client,
      era: () => client.getProtocolEra(),
      listTools: () => client.listTools(),
      callTool: (params, options = {}) => client.callTool(params, options),
      readResource: (params) => client.readResource(params),
      subscribeResource: (params) => client.subscribeResource(params),
      onResourceUpdated: (fn) => {
        updated = fn;
      },
      close: () => client.close(),
    };
  }
  const client = new Client1({ name: 'mcpgw-matrix', version: '0.0.0' }, { capabilities });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => sample(request.params));
  client.setRequestHandler(ElicitRequestSchema, async (request) => elicit(request.params));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updated(n.params.uri));
  const transport =
    spec.transport === 'sse' ? new SSEClientTransport(new URL(gw.sseUrl)) : new Streamable1(new URL(gw.mcpUrl));
  // Every message the transport delivers, before the SDK's Protocol handles it (it chains a
  // handler set before `connect`): SDK 1.x drops a progress notification that arrives in
  // the same read as its response (typescript-sdk#2580, see README), the wire has them all.
  const wire = [];
  transport.onmessage = (message) => wire.push(message);
  await withTimeout(client.connect(transport), CONNECT_TIMEOUT_MS, `connect (${spec.name})`);
  return {
    raw: client,
    wire,
    era: () => 'legacy',
    listTools: () => client.listTools(),
    callTool: (params, options = {}) => client.callTool(params, undefined, options),
    readResource: (params) => client.readResource(params),
    subscribeResource: (params) => client.subscribeResource(params),
    onResourceUpdated: (fn) => {
      updated = fn;
    },
    close: async () => {
      // A Streamable session is ended by DELETE; close() alone only aborts the fetches.
      if (spec.transport === 'streamable') await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

/**
 * Calls `params` on `client` (from `connectMatrixClient`) with a progress handler and checks
 * the progress against `expected` (`[progress, total]` pairs, in order): all of them on the wire
 * before the response where the wire is seen (SDK 1.x), and what the handler got a prefix of
 * them (at least one: an SDK may hand over the response before the last notification of the
 * same read). Returns the result.
 */
export async function callWithProgress(client, params, expected, timeoutMs) {
  const progress = [];
  const from = client.wire?.length;
  const result = await withTimeout(
    client.callTool(params, { onprogress: (p) => progress.push([p.progress, p.total]), timeout: timeoutMs }),
    timeoutMs,
    `callTool ${params.name}`,
  );
  if (client.wire) {
    const delivered = client.wire.slice(from);
    const responseAt = delivered.findIndex((m) => 'result' in m || 'error' in m);
    const notes = delivered.slice(0, responseAt).filter((m) => m.method === 'notifications/progress');
    assert.deepEqual(
      notes.map((m) => [m.params.progress, m.params.total]),
      expected,
      `progress on the wire: ${JSON.stringify(delivered)}`,
    );
    assert.deepEqual(progress, expected.slice(0, progress.length), `onprogress saw ${JSON.stringify(progress)}`);
  } else {
    assert.ok(progress.length >= 1, 'onprogress was called');
    assert.deepEqual(progress, expected.slice(0, progress.length), `onprogress saw ${JSON.stringify(progress)}`);
  }
  return result;
}
