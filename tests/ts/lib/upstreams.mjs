// Helpers for the upstream tests: where server-everything is, gateway configs that use it,
// and SDK clients that answer sampling and elicitation and record what reaches them.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import { makeTransport, withTimeout } from './gateway.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

/** server-everything's entry point, from this suite's own dependencies. */
export function everythingPath() {
  const path = resolve(HERE, '../node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: install this suite's dependencies (\`make deps-ts\`, or \`npm ci\` in tests/ts)`,
    );
  }
  return path;
}

/** A TOML basic string (JSON string escapes are valid TOML). */
export const tomlString = (value) => JSON.stringify(String(value));

/** The built-in tools plus server-everything as a stdio upstream, shared as `share`. */
export function everythingConfig(share, { builtin = true } = {}) {
  return [
    '[sessions]',
    'legacy_grace_secs = 0',
    '',
    ...(builtin ? ['[upstreams.builtin]', 'kind = "builtin"', ''] : []),
    '[upstreams.everything]',
    'kind = "stdio"',
    'command = "node"',
    `args = [${tomlString(everythingPath())}, "stdio"]`,
    `share = "${share}"`,
    '',
  ].join('\n');
}

/**
 * Waits until the gateway logged that the shared upstream `name` is connected, so clients
 * meet the state a gateway is in most of its life (its shared children started earlier).
 */
export async function waitSharedUpstreamUp(gw, name, timeoutMs = 30_000) {
  const pattern = new RegExp(`upstream connected.*upstream=${name}\\b`);
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(gw.logs())) {
    if (Date.now() >= deadline) {
      throw new Error(`the shared upstream ${name} was not connected within ${timeoutMs} ms\n${gw.logs()}`);
    }
    await delay(20);
  }
}

/**
 * A client of `kind` that declares sampling and elicitation and answers them with texts
 * naming `tag`. `gate`, when given, is awaited before a sampling answer. Returns
 * `{ client, transport, wire, errors, seen }`: `wire` is every message the transport
 * delivered; `seen` records the sampling prompts and elicitation messages this client got
 * and the URIs of resource updates, and `seen.nextUpdate()` resolves on the next update.
 */
export async function connectAnswering(gw, kind, tag, { gate } = {}) {
  const transport = makeTransport(gw, kind);
  const wire = [];
  const errors = [];
  transport.onmessage = (message) => wire.push(message);
  transport.onerror = (error) => errors.push(error);
  const client = new Client(
    { name: `mcpgw-ts-${tag}`, version: '0.0.0' },
    { capabilities: { sampling: {}, elicitation: {} } },
  );
  let updateWaiters = [];
  const seen = {
    sampling: [],
    elicitation: [],
    updates: [],
    sampled: `sampled answer from ${tag}`,
    name: `Name of ${tag}`,
    nextUpdate: () => new Promise((resolveUpdate) => updateWaiters.push(resolveUpdate)),
  };
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    seen.sampling.push(request.params.messages[0].content.text);
    if (gate) await gate();
    return { model: `model-${tag}`, role: 'assistant', content: { type: 'text', text: seen.sampled } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    seen.elicitation.push(request.params.message);
    return { action: 'accept', content: { name: seen.name, check: true } };
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
    seen.updates.push(notification.params.uri);
    const waiters = updateWaiters;
    updateWaiters = [];
    for (const resolveUpdate of waiters) resolveUpdate(notification.params.uri);
  });
  await withTimeout(client.connect(transport), 15_000, `${kind} client ${tag} to connect`);
  return { client, transport, wire, errors, seen };
}

/** server-everything's sampling tool answers `LLM sampling result: \n<JSON of the result>`. */
export function samplingResult(text) {
  const nl = text.indexOf('\n');
  if (!text.startsWith('LLM sampling result:') || nl < 0) {
    throw new Error(`not a sampling result: ${text}`);
  }
  return JSON.parse(text.slice(nl + 1));
}
