// One session of the official TypeScript SDK 1.x client through a cluster's load balancer,
// step by step, for tests/tests/cluster.rs: on Streamable HTTP, or on legacy HTTP+SSE, where
// the SDK's EventSource reconnects by itself with the last event id it saw.
//
// usage: node cluster-takeover.mjs BASE_URL [streamable|sse]
//
// Prints {"session": ID} after a first echo call, then waits for a line on its input (the
// test kills the instance holding the session meanwhile), makes a second echo call in the
// same session and prints what it saw (the session id, every HTTP status of the session,
// the echoes, the transport's errors); then waits for another line before it closes.

import { createInterface } from 'node:readline';

import { connectClient, toolText, withTimeout } from '../lib/gateway.mjs';

const base = process.argv[2];
const kind = process.argv[3] ?? 'streamable';
const statuses = [];
// SSEClientTransport 1.32.2 drops the Last-Event-ID its EventSource sets on a reconnect (its
// fetch wrapper replaces the headers: docs/testing.md, "Known client bugs"), so the header
// the EventSource would send is supplied through `requestInit`, which the transport reads on
// every request: the id of the last event the event stream carried.
const requestInit = { headers: {} };
const realFetch = globalThis.fetch;
// POSTs whose response has not come yet. On legacy SSE an answer comes on the event stream,
// and can reach the client before the 202 of the POST that carried its request: an instance
// killed in between drops that 202 (HAProxy answers 502) though the request was served.
// "Idle" (when the test kills the holder) means none in flight.
let posting = 0;
let settledNow = () => {};
const settled = () => (posting === 0 ? Promise.resolve() : new Promise((resolve) => (settledNow = resolve)));
globalThis.fetch = async (input, init) => {
  const method = init?.method ?? 'GET';
  if (method !== 'GET') posting += 1;
  let response;
  try {
    response = await realFetch(input, init);
  } finally {
    if (method !== 'GET') {
      posting -= 1;
      if (posting === 0) settledNow();
    }
  }
  statuses.push([method, response.status]);
  if (kind === 'sse' && method === 'GET' && response.ok && response.body) {
    const decoder = new TextDecoder();
    let pending = '';
    const tap = new TransformStream({
      transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        const lines = pending.split('\n');
        pending = lines.pop();
        for (const line of lines) {
          if (line.startsWith('id:')) requestInit.headers['Last-Event-ID'] = line.slice(3).trim();
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(tap), response);
  }
  return response;
};

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const step = async () => withTimeout(lines.next(), 60_000, 'the test to go on');

const gw = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) };
const { client, transport, errors } = await connectClient(gw, kind, {
  name: 'mcpgw-cluster-ts',
  transportOpts: { requestInit },
});
// The legacy transport has no session id of its own: it is in the endpoint it was given.
const sessionId = () => transport.sessionId ?? transport._endpoint?.searchParams.get('sessionId');
const echo = async (text) =>
  toolText(await withTimeout(client.callTool({ name: 'echo', arguments: { text } }), 20_000, 'an echo call'));
const echoes = [await echo('before')];
await withTimeout(settled(), 20_000, 'the POSTs to be answered');
const session = sessionId();
console.log(JSON.stringify({ session }));
await step();
echoes.push(await echo('after'));
console.log(
  JSON.stringify({ session: sessionId(), first: session, statuses, echoes, errors: errors.map(String) }),
);
await step();
await client.close();
