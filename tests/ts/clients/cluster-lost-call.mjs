// One Streamable HTTP session of the official TypeScript SDK 1.x client through a
// cluster's load balancer, whose instance dies during a call, for tests/tests/cluster_journal.rs.
//
// usage: node cluster-lost-call.mjs BASE_URL
//
// Makes an echo call, then starts a `sleep` call with progress and prints {"session": ID}
// once two progress notifications arrived. Then it waits for a line on its input (the test
// kills the instance holding the session meanwhile), waits for the sleep call's outcome (the
// SDK resumes its POST stream with Last-Event-ID by itself), makes another echo call in the
// same session, and prints what it saw: the progress values, the call's outcome, the echoes,
// and, tapped below the SDK (a fetch wrapper), every HTTP exchange: the request ids it sent
// and the event ids and messages (or JSON body) that came back.

import { createInterface } from 'node:readline';

import { connectClient, toolText, withTimeout } from '../lib/gateway.mjs';

const base = process.argv[2];
const exchanges = [];
const realFetch = globalThis.fetch;

/** Reads a copy of an event stream as it passes: each event's id and message. */
async function tap(body, exchange) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      // mcpgw ends its lines with LF.
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const raw = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id = null;
        const data = [];
        for (const line of raw.split('\n')) {
          if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        const text = data.join('\n');
        if (id !== null || text) exchange.events.push({ id, message: text ? JSON.parse(text) : null });
      }
    }
  } catch {
    // The connection broke: what came before it is recorded.
  }
}

globalThis.fetch = async (input, init) => {
  const method = init?.method ?? 'GET';
  const headers = new Headers(init?.headers);
  const sent = [];
  if (method === 'POST' && typeof init?.body === 'string') {
    const body = JSON.parse(init.body);
    for (const m of Array.isArray(body) ? body : [body]) {
      if (m && m.method !== undefined && m.id !== undefined) sent.push(m.id);
    }
  }
  const exchange = { method, last_event_id: headers.get('last-event-id'), sent, events: [], json: null, status: null };
  exchanges.push(exchange);
  const response = await realFetch(input, init);
  exchange.status = response.status;
  const kind = (response.headers.get('content-type') ?? '').split(';')[0].trim();
  if (kind === 'text/event-stream' && response.body) {
    const [sdk, copy] = response.body.tee();
    tap(copy, exchange);
    return new Response(sdk, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
  if (kind === 'application/json') {
    exchange.json = await response.clone().json();
  }
  return response;
};

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const step = async () => withTimeout(lines.next(), 60_000, 'the test to go on');

const gw = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) };
const { client, transport } = await connectClient(gw, 'streamable', { name: 'mcpgw-cluster-ts' });
const echo = async (text) =>
  toolText(await withTimeout(client.callTool({ name: 'echo', arguments: { text } }), 20_000, 'an echo call'));
const echoes = [await echo('before')];
const session = transport.sessionId;

const progress = [];
let two;
const twoSeen = new Promise((resolve) => {
  two = resolve;
});
const outcome = {};
const slow = client
  .callTool({ name: 'sleep', arguments: { ms: 8000, steps: 16 } }, undefined, {
    onprogress: (p) => {
      progress.push(p.progress);
      if (progress.length === 2) two();
    },
    timeout: 30_000,
  })
  .then(
    (result) => {
      outcome.result = result;
    },
    (error) => {
      outcome.error = { code: error.code, message: error.message };
    },
  );
await withTimeout(twoSeen, 20_000, 'two progress notifications');
console.log(JSON.stringify({ session }));
await step();
await withTimeout(slow, 30_000, "the sleep call's outcome");
echoes.push(await echo('after'));
console.log(JSON.stringify({ session: transport.sessionId, first: session, progress, outcome, echoes, exchanges }));
await client.close();
process.exit(0);
