// One Streamable HTTP session of the official TypeScript SDK 1.x client through a
// cluster's load balancer, step by step, for tests/tests/cluster.rs.
//
// usage: node cluster-takeover.mjs BASE_URL
//
// Prints {"session": ID} after a first echo call, then waits for a line on its input (the
// test kills the instance holding the session meanwhile), makes a second echo call in the
// same session and prints what it saw (the session id, every HTTP status of the session,
// the echoes, the transport's errors); then waits for another line before it closes.

import { createInterface } from 'node:readline';

import { connectClient, toolText, withTimeout } from '../lib/gateway.mjs';

const base = process.argv[2];
const statuses = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const response = await realFetch(input, init);
  statuses.push([init?.method ?? 'GET', response.status]);
  return response;
};

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const step = async () => withTimeout(lines.next(), 60_000, 'the test to go on');

const gw = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) };
const { client, transport, errors } = await connectClient(gw, 'streamable', { name: 'mcpgw-cluster-ts' });
const echo = async (text) =>
  toolText(await withTimeout(client.callTool({ name: 'echo', arguments: { text } }), 20_000, 'an echo call'));
const echoes = [await echo('before')];
const session = transport.sessionId;
console.log(JSON.stringify({ session }));
await step();
echoes.push(await echo('after'));
console.log(
  JSON.stringify({ session: transport.sessionId, first: session, statuses, echoes, errors: errors.map(String) }),
);
await step();
await client.close();
