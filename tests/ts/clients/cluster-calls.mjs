// Sessions of the official TypeScript SDK 1.x client through a cluster's load balancer,
// for tests/tests/cluster.rs (which checks what the gateways saw).
//
// usage: node cluster-calls.mjs BASE_URL SESSIONS_PER_TRANSPORT CALLS
//
// Opens SESSIONS_PER_TRANSPORT sessions on each transport (Streamable HTTP, and legacy
// HTTP+SSE through EventSource), all at once; each lists the tools and makes CALLS echo
// calls. Prints one JSON line per session: its transport, its session id, the HTTP status
// of every response it got, and the echoes. Exits non-zero on any failure.

import { TRANSPORTS, connectClient, toolText, withTimeout } from '../lib/gateway.mjs';

const [base, sessions, calls] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];

// Every response the SDK's transports get (the SSE transport's EventSource included), by
// the session it was for.
const seen = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const response = await realFetch(input, init);
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  seen.push({
    status: response.status,
    session: headers.get('mcp-session-id') ?? url.searchParams.get('sessionId'),
  });
  return response;
};

const gw = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) };

async function oneSession(kind) {
  const { client, transport, errors } = await connectClient(gw, kind, { name: 'mcpgw-cluster-ts' });
  await client.listTools();
  const echoes = [];
  for (let n = 0; n < calls; n++) {
    echoes.push(toolText(await client.callTool({ name: 'echo', arguments: { text: `${kind}-${n}` } })));
  }
  const session = kind === 'streamable' ? transport.sessionId : transport._endpoint?.searchParams.get('sessionId');
  await client.close();
  return { client: 'ts', transport: kind, session, echoes, errors: errors.map(String) };
}

const runs = [];
for (const kind of TRANSPORTS) {
  for (let i = 0; i < sessions; i++) runs.push(oneSession(kind));
}
const results = await withTimeout(Promise.all(runs), 60_000, 'the sessions');
for (const result of results) {
  result.statuses = seen.filter((s) => s.session === result.session).map((s) => s.status);
  console.log(JSON.stringify(result));
}
