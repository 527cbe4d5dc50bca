// Starts and stops fixtures/modern-server.mjs, the modern-only upstream (the TypeScript SDK 2.x
// server with `legacy: 'reject'`), for the tests: its URL comes from its first stdout line.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { withTimeout } from './gateway.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * A running modern-only upstream: `url` (its `/mcp` endpoint), `logs()` (its stderr: one line per
 * tool call) and `stop()` (SIGTERM; resolves once it has exited). `args` go to the server
 * (`--no-subscriptions`).
 */
export async function startModernServer({ args = [] } = {}) {
  const child = spawn(process.execPath, [resolve(HERE, '../fixtures/modern-server.mjs'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
  });
  let stdout = '';
  const listening = new Promise((resolveUrl, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      stdout += chunk;
      const m = stdout.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
      if (m) resolveUrl(m[1]);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`modern-server exited before listening (${code ?? signal}):\n${stderr}`)),
    );
  });
  const exited = once(child, 'exit');
  let url;
  try {
    url = await withTimeout(listening, START_TIMEOUT_MS, 'modern-server to listen');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code, signal] = await withTimeout(exited, STOP_TIMEOUT_MS, 'modern-server to exit');
      return { code, signal };
    },
  };
}
