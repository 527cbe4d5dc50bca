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
// and, tapped below the SDK (tap.mjs, a fetch wrapper), every HTTP exchange: the request ids
// it sent and the event ids and messages (or JSON body) that came back.

import { createInterface } from 'node:readline';

import { connectClient, toolText, withTimeout } from '../lib/gateway.mjs';
import { tappedFetch } from './tap.mjs';

const base = process.argv[2];
const exchanges = [];

globalThis.fetch = tappedFetch(exchanges, globalThis.fetch);

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
