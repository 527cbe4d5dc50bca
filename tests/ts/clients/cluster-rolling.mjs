// Streamable HTTP sessions of the official TypeScript SDK 1.x client calling through a
// cluster's load balancer while the test restarts every instance in turn, for
// tests/tests/cluster_rolling.rs.
//
// usage: node cluster-rolling.mjs BASE_URL SESSIONS
//
// Step by step, each step ended by a line on its input (as tests/python/clients/cluster_rolling.py):
// 1. Opens SESSIONS sessions at once, each with the standalone GET stream the SDK opens by
//    itself, and prints {"sessions": [ID, ...]} once each has made a first echo call. Then
//    every session calls `echo` every 100 ms with a text of its own (`ts-<i>-<n>`).
// 2. Makes a last call in each session and stops calling, and prints {"streams_home": {ID:
//    true|false}}: whether each session's standalone stream is open again on the session's
//    own instance (the one its id names, told by the load balancer's `X-Mcpgw-Node`) within
//    8 s. A restart ends the stream; the SDK opens it again by itself, on whichever instance
//    holds the session then.
// 3. Waits (at most 8 s) for the two progress notifications the test sends to each session's
//    standalone stream, closes, and prints one JSON line per session: its session id, the
//    session ids it sent, the texts it sent and the echoes it got back, in order, the errors
//    (its calls' and its transport's), and, tapped below the SDK (tap.mjs), every HTTP
//    exchange with its status and events.
//
// Every call has a bounded wait (the SDK's request timeout).

import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';

import { connectClient, toolText, withTimeout } from '../lib/gateway.mjs';
import { tappedFetch } from './tap.mjs';

const [base, count] = [process.argv[2], Number(process.argv[3])];
const PERIOD_MS = 100;
const CALL_TIMEOUT_MS = 10_000;
// How long a session waits for its stream to be back home, and for the test's notifications:
// an instance that lost the session ends its stream within a second (its fence check), and
// the SDK opens it again after the `retry` the gateway sent (2 s while it drains).
const STEP_MS = 8_000;

const gw = { mcpUrl: new URL(`${base}/mcp`), sseUrl: new URL(`${base}/sse`) };

/** A promise resolved by `resolve()`, and whether it was. */
function signal() {
  const s = { done: false };
  s.promise = new Promise((resolve) => {
    s.resolve = () => {
      s.done = true;
      resolve();
    };
  });
  return s;
}

/** One SDK session, its calls, and everything it saw. */
class RollingSession {
  constructor(index) {
    this.index = index;
    this.exchanges = [];
    this.texts = [];
    this.echoes = [];
    this.callErrors = [];
    this.changed = () => {};
  }

  async open() {
    const fetch = tappedFetch(this.exchanges, globalThis.fetch, () => this.changed());
    const { client, transport, errors } = await connectClient(gw, 'streamable', {
      name: 'mcpgw-cluster-ts',
      transportOpts: { fetch },
    });
    Object.assign(this, { client, transport, transportErrors: errors });
    await this.echo(0);
  }

  async echo(n) {
    const text = `ts-${this.index}-${n}`;
    this.texts.push(text);
    try {
      const result = await this.client.callTool({ name: 'echo', arguments: { text } }, undefined, {
        timeout: CALL_TIMEOUT_MS,
      });
      this.echoes.push(toolText(result));
    } catch (e) {
      this.callErrors.push(`${text}: ${e}`);
    }
  }

  gets() {
    return this.exchanges.filter((e) => e.method === 'GET');
  }

  /**
   * Whether the last standalone GET was answered 200 by the session's own instance, and its
   * stream goes on.
   */
  streamHome() {
    const last = this.gets().at(-1);
    const own = this.transport.sessionId.slice(0, 4);
    return last !== undefined && last.status === 200 && last.node === own && !last.ended;
  }

  progressSeen() {
    return this.gets()
      .flatMap((e) => e.events)
      .filter((event) => event.message?.method === 'notifications/progress').length;
  }

  async waitUntil(condition) {
    const met = new Promise((resolve) => {
      this.changed = () => {
        if (condition()) resolve();
      };
      this.changed();
    });
    await withTimeout(met, STEP_MS, 'a condition').catch(() => {});
    this.changed = () => {};
    return condition();
  }

  /**
   * Calls every PERIOD_MS until `stop`, then once more: the test saw every instance up before
   * it said stop, so that call reaches the session's own instance, which takes the session
   * back if another one held it.
   */
  async calls(stop) {
    let n = 1;
    let nextAt = Date.now();
    for (;;) {
      nextAt = Math.max(nextAt + PERIOD_MS, Date.now());
      await Promise.race([delay(nextAt - Date.now()), stop.promise]);
      const last = stop.done;
      await this.echo(n);
      n += 1;
      if (last) return;
    }
  }

  async run(steps) {
    await this.calls(steps.stop);
    this.home = await this.waitUntil(() => this.streamHome());
    steps.settled();
    await steps.notified.promise;
    await this.waitUntil(() => this.progressSeen() >= 2);
    // Before the close, whose aborted streams are no error of the restart.
    const errors = [...this.callErrors, ...this.transportErrors.map(String)];
    await this.client.close();
    return {
      client: 'ts',
      session: this.transport.sessionId,
      sent_session_ids: [...new Set(this.exchanges.map((e) => e.session).filter(Boolean))].sort(),
      texts: this.texts,
      echoes: this.echoes,
      errors,
      exchanges: this.exchanges,
    };
  }
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const sessions = Array.from({ length: count }, (_, i) => new RollingSession(i));
await withTimeout(Promise.all(sessions.map((s) => s.open())), 60_000, 'the sessions to open');
console.log(JSON.stringify({ sessions: sessions.map((s) => s.transport.sessionId) }));

let settledCount = 0;
let allSettled;
const settled = new Promise((resolve) => {
  allSettled = resolve;
});
const steps = {
  stop: signal(),
  notified: signal(),
  settled: () => {
    settledCount += 1;
    if (settledCount === count) allSettled();
  },
};
const running = sessions.map((s) => s.run(steps));
await lines.next();
steps.stop.resolve();
// Each session's wait is bounded (STEP_MS, after a call of at most CALL_TIMEOUT_MS).
await settled;
console.log(JSON.stringify({ streams_home: Object.fromEntries(sessions.map((s) => [s.transport.sessionId, s.home])) }));
await lines.next();
steps.notified.resolve();
const reports = await Promise.all(running);
// A pipe is written asynchronously: exit (stdin's reader would keep the process alive) only
// once every line is out.
process.stdout.write(reports.map((r) => `${JSON.stringify(r)}\n`).join(''), () => process.exit(0));
