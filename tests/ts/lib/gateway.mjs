// Starts and stops the real mcpgw binary for the end-to-end tests, plus the small helpers
// the tests share (SDK clients on both transports, /healthz polling, bounded waits).
//
// Nothing here sleeps to wait for something: every wait is on an event (a log line, a
// process exit, a response) and is bounded by a timeout that fails the test clearly.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** How long the gateway may take to print its listening line. */
const START_TIMEOUT_MS = 20_000;
/** How long the gateway may take to exit after SIGTERM (its own drain deadline is 10 s). */
const STOP_TIMEOUT_MS = 15_000;
/** How many stderr lines are kept for failure messages. */
const LOG_LINES_KEPT = 200;

/** The gateway binary: `MCPGW_BIN`, else the debug build of this checkout. */
export function gatewayBinary() {
  const bin = process.env.MCPGW_BIN || resolve(HERE, '../../../target/debug/mcpgw');
  if (!existsSync(bin)) {
    throw new Error(
      `mcpgw binary not found at ${bin}: build it first (cd to the repository root and run ` +
        '`cargo build -p mcpgw`, or `make test-ts`), or set MCPGW_BIN',
    );
  }
  return bin;
}

/**
 * Rejects with a clear message if `promise` has not settled within `ms`.
 * The timer is cleared as soon as the promise settles.
 */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A running gateway.
 * - `url`: the base URL, e.g. `http://127.0.0.1:41234`
 * - `mcpUrl`, `sseUrl`: the Streamable HTTP endpoint and the legacy SSE endpoint
 * - `logs()`: the last stderr lines, for failure messages
 * - `stop()`: SIGTERM, then resolves `{ code, signal }` once it has exited
 */
export async function startGateway({ config, listenFd } = {}) {
  const bin = gatewayBinary();
  // With `listenFd`, a listening socket the test bound itself is handed over as systemd does
  // (fd 3, LISTEN_FDS=1), for a config that must name the gateway's address before it starts.
  const args = listenFd === undefined ? ['--listen', '127.0.0.1:0'] : [];
  let configDir;
  if (config !== undefined) {
    configDir = mkdtempSync(join(tmpdir(), 'mcpgw-ts-'));
    const path = join(configDir, 'mcpgw.toml');
    writeFileSync(path, config);
    args.push('--config', path);
  }
  // cwd: a directory with no config/mcpgw.toml, so only what we pass applies.
  const env = { ...process.env, MCPGW_LOG: process.env.MCPGW_LOG ?? 'info' };
  const child =
    listenFd === undefined
      ? spawn(bin, args, { cwd: configDir ?? tmpdir(), env, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('sh', ['-c', 'exec 3<&0 0</dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@"', bin, ...args], {
          cwd: configDir ?? tmpdir(),
          env,
          stdio: [listenFd, 'ignore', 'pipe'],
        });

  const lines = [];
  let partial = '';
  let onLine = () => {};
  // stderr is drained for the whole life of the process, so the gateway never blocks on a
  // full pipe.
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    partial += chunk;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      if (lines.length > LOG_LINES_KEPT) lines.shift();
      onLine(line);
    }
  });
  const logs = () => lines.join('\n');
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));

  const cleanup = () => {
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  };

  let port;
  try {
    port = await withTimeout(
      new Promise((resolvePort, reject) => {
        onLine = (line) => {
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
          if (m) resolvePort(Number(m[1]));
        };
        child.once('error', reject);
        exited.then(({ code, signal }) =>
          reject(new Error(`mcpgw exited before listening (code ${code}, signal ${signal})`)),
        );
      }),
      START_TIMEOUT_MS,
      'mcpgw to print "listening on http://127.0.0.1:PORT"',
    );
  } catch (e) {
    child.kill('SIGKILL');
    cleanup();
    throw new Error(`${e.message}\n--- mcpgw stderr ---\n${logs()}`);
  } finally {
    onLine = () => {};
  }

  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    mcpUrl: new URL('/mcp', url),
    sseUrl: new URL('/sse', url),
    process: child,
    logs,
    async stop() {
      try {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        return await withTimeout(exited, STOP_TIMEOUT_MS, 'mcpgw to exit after SIGTERM');
      } catch (e) {
        child.kill('SIGKILL');
        throw new Error(`${e.message}\n--- mcpgw stderr ---\n${logs()}`);
      } finally {
        cleanup();
      }
    },
  };
}

/** The two transports, as the tests name them. */
export const TRANSPORTS = ['streamable', 'sse'];

/** A transport of `kind` to `gw`. */
export function makeTransport(gw, kind, opts = {}) {
  switch (kind) {
    case 'streamable':
      return new StreamableHTTPClientTransport(gw.mcpUrl, opts);
    case 'sse':
      return new SSEClientTransport(gw.sseUrl, opts);
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

/**
 * A new SDK client, connected (initialized) over `kind`. Returns `{ client, transport,
 * wire, errors }`: `wire` is every JSON-RPC message the transport delivered, in arrival
 * order, before the SDK's Protocol layer handled it (the Protocol chains a handler set
 * before `connect`); `errors` is every error the transport or protocol reported.
 */
export async function connectClient(gw, kind, { name = 'mcpgw-ts-tests', transportOpts } = {}) {
  const transport = makeTransport(gw, kind, transportOpts);
  const wire = [];
  const errors = [];
  transport.onmessage = (message) => wire.push(message);
  transport.onerror = (error) => errors.push(error);
  const client = new Client({ name, version: '0.0.0' });
  await withTimeout(client.connect(transport), 10_000, `${kind} client to connect`);
  return { client, transport, wire, errors };
}

/** The text of a tool result's single text content block. */
export function toolText(result) {
  const texts = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
  if (texts.length !== 1) {
    throw new Error(`expected exactly one text content block, got ${JSON.stringify(result)}`);
  }
  return texts[0];
}

/** `GET /healthz`, parsed. */
export async function health(gw) {
  const response = await fetch(new URL('/healthz', gw.url));
  if (response.status !== 200) {
    throw new Error(`/healthz answered HTTP ${response.status}: ${await response.text()}`);
  }
  return response.json();
}

/**
 * Polls `/healthz` until `predicate(body)` holds, or fails after `timeoutMs` with the last
 * body seen. Session ends are observed asynchronously by the gateway (a closed stream is
 * noticed a moment later), so a bounded poll is the honest way to wait for them.
 */
export async function waitForHealth(gw, predicate, { timeoutMs = 10_000, what = 'the expected /healthz' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (let attempt = 0; ; attempt++) {
    last = await health(gw);
    if (predicate(last)) return last;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last /healthz: ${JSON.stringify(last)}`);
    }
    // A poll interval, not a wait for the event itself: short, growing, capped.
    await delay(Math.min(10 * 2 ** attempt, 100));
  }
}

/** A TOML config where a legacy session ends as soon as its event stream closes. */
export const NO_GRACE_CONFIG = '[sessions]\nlegacy_grace_secs = 0\n';
