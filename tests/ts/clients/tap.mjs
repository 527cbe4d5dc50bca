// A tap below the official TypeScript SDK client, for the cluster scripts: a fetch that
// records every HTTP exchange, with the JSON-RPC request ids it sent and what came back (each
// SSE event's id and message, or the JSON body), so that a test can check the invariants on
// all a client received (tests/src/cluster_client.rs, `assert_client_invariants`).

/** Reads a copy of an event stream as it passes: each event's id and message. */
async function tap(body, exchange, onChange) {
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
        if (id !== null || text) {
          exchange.events.push({ id, message: text ? JSON.parse(text) : null });
          onChange();
        }
      }
    }
  } catch {
    // The connection broke: what came before it is recorded.
  }
  exchange.ended = true;
  onChange();
}

/**
 * A fetch that calls `realFetch` and pushes a record of each exchange onto `exchanges`:
 * `{ method, session, last_event_id, sent, events, json, status, node, ended }`, where `node`
 * is the instance that answered when the load balancer names it (`X-Mcpgw-Node`,
 * tests/src/cluster.rs). `onChange` is called when a response arrives, on each event, and
 * when an event stream ends.
 */
export function tappedFetch(exchanges, realFetch = globalThis.fetch, onChange = () => {}) {
  return async (input, init) => {
    const method = init?.method ?? 'GET';
    const headers = new Headers(init?.headers);
    const sent = [];
    if (method === 'POST' && typeof init?.body === 'string') {
      const body = JSON.parse(init.body);
      for (const m of Array.isArray(body) ? body : [body]) {
        if (m && m.method !== undefined && m.id !== undefined) sent.push(m.id);
      }
    }
    const exchange = {
      method,
      session: headers.get('mcp-session-id'),
      last_event_id: headers.get('last-event-id'),
      sent,
      events: [],
      json: null,
      status: null,
      node: null,
      ended: false,
    };
    exchanges.push(exchange);
    const response = await realFetch(input, init);
    exchange.status = response.status;
    exchange.node = response.headers.get('x-mcpgw-node');
    const kind = (response.headers.get('content-type') ?? '').split(';')[0].trim();
    if (kind === 'text/event-stream' && response.body) {
      const [sdk, copy] = response.body.tee();
      tap(copy, exchange, onChange);
      onChange();
      return new Response(sdk, { status: response.status, statusText: response.statusText, headers: response.headers });
    }
    if (kind === 'application/json') {
      exchange.json = await response.clone().json();
    }
    exchange.ended = true;
    onChange();
    return response;
  };
}
