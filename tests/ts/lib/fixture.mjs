// Starts and stops tests/fixture (`mcpgw-fixture --http 127.0.0.1:0`: the Rust conformance
// fixture serving both protocol eras on one /mcp) as an upstream for the tests. Its tools log
// what they saw on stderr (e.g. `test_wait_for_cancel started id=…` and `… cancelled id=…`);
// `waitForLog` waits for such a line, bounded, without sleeping.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withTimeout } from './gateway.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** The fixture binary: `MCPGW_FIXTURE_BIN`, else the debug build of this checkout. */
export function fixtureBinary() {
  const bin = process.env.MCPGW_FIXTURE_BIN || resolve(HERE, '../../../target/debug/mcpgw-fixture');
  if (!existsSync(bin)) {
    throw new Error(
      `mcpgw-fixture not found at ${bin}: build it first (\`cargo build -p mcpgw-tests --bin mcpgw-fixture\`, ` +
        'or `make test-ts`), or set MCPGW_FIXTURE_BIN',
    );
  }
  return bin;
}

/**
 * A running fixture: `url` (its /mcp endpoint), `logs()` (its stderr so far), `mark()` (how many
 * stderr lines it has written), `waitForLog(regex, ms, after)` (resolves with the first stderr line
 * past the first `after` that matches: `{ text, at }`, `at` from `performance.now()` when it was
 * read) and `stop()`.
 */
export async function startFixture() {
  const child = spawn(fixtureBinary(), ['--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const waiters = new Set();
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const text of parts) {
      const line = { text, at: performance.now() };
      lines.push(line);
      for (const waiter of waiters) waiter(line);
    }
  });
  let stdout = '';
  const listening = new Promise((resolveUrl, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
      const m = stdout.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
      if (m) resolveUrl(m[1]);
    });
    child.once('exit', (code, signal) => reject(new Error(`mcpgw-fixture exited before listening (${code ?? signal})`)));
  });
  const exited = once(child, 'exit');
  let url;
  try {
    url = await withTimeout(listening, START_TIMEOUT_MS, 'mcpgw-fixture to listen');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const logs = () => lines.map((l) => l.text).join('\n');
  return {
    url,
    logs,
    mark: () => lines.length,
    waitForLog(pattern, ms, after = 0) {
      const seen = lines.slice(after).find((l) => pattern.test(l.text));
      if (seen) return Promise.resolve(seen);
      let waiter;
      const found = new Promise((resolveLine) => {
        waiter = (line) => {
          if (pattern.test(line.text)) resolveLine(line);
        };
        waiters.add(waiter);
      });
      return withTimeout(found, ms, `a fixture log line matching ${pattern}; its log:\n${logs()}`).finally(() =>
        waiters.delete(waiter),
      );
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code, signal] = await withTimeout(exited, STOP_TIMEOUT_MS, 'mcpgw-fixture to exit');
      return { code, signal };
    },
  };
}
