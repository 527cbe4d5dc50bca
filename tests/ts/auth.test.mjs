// The TypeScript SDK's own OAuth support gets a token starting from mcpgw's 401 and then
// calls tools, over both transports: the 401's `resource_metadata`, mcpgw's protected
// resource metadata (RFC 9728), the authorization server's metadata, and the client
// credentials grant with the resource indicator (RFC 8707), against a real authorization
// server (tests/auth/server.mjs: oidc-provider; `make deps-auth` installs it).
//
// The SDK accepts metadata only for the URL it connects to, so the gateway's `resource` must
// be its real address, known before it starts: the test binds the listening socket itself and
// hands it to mcpgw as systemd does; the port is still the kernel's pick.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

import { TRANSPORTS, makeTransport, startGateway, toolText, withTimeout } from './lib/gateway.mjs';

const AUTH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../auth');

/** tests/auth/server.mjs for `resource`; resolves `{ issuer, stop() }` once it printed its line. */
async function startAuthServer(resource) {
  const node = resolve(AUTH_DIR, 'node_modules/.bin/node');
  if (!existsSync(node)) throw new Error(`${node} is missing: run \`make deps-auth\` (npm ci in tests/auth)`);
  const child = spawn(node, [resolve(AUTH_DIR, 'server.mjs'), resource], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  const line = await withTimeout(
    new Promise((resolveLine, reject) => {
      let buffered = '';
      child.stdout.on('data', (chunk) => {
        buffered += chunk;
        const nl = buffered.indexOf('\n');
        if (nl >= 0) resolveLine(buffered.slice(0, nl));
      });
      child.once('exit', (code) => reject(new Error(`the authorization server exited (code ${code})`)));
    }),
    60_000,
    'tests/auth/server.mjs to print its issuer',
  );
  return { issuer: JSON.parse(line).issuer, stop: () => child.kill() };
}

let gw;
let auth;

before(async () => {
  const listener = net.createServer();
  await new Promise((ok) => listener.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${listener.address().port}`;
  // The base URL as the resource: the SDK wants it to prefix the URL it connects to, and legacy
  // SSE clients connect to /sse (docs/configuration.md, `resource`).
  auth = await startAuthServer(`${base}/`);
  const config =
    `[auth]\nresource = "${base}/"\nrequired_scopes = ["mcp:tools"]\n` +
    `[[auth.issuers]]\nissuer = "${auth.issuer}"\naccess_token_type = true\n`;
  gw = await startGateway({ config, listenFd: listener._handle.fd });
  // The gateway holds its own copy of the socket now.
  listener.close();
  assert.equal(gw.url, base, 'the gateway serves on the socket it was handed');
});

after(async () => {
  const exit = await gw?.stop();
  auth?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, 'mcpgw exits cleanly on SIGTERM');
});

for (const kind of TRANSPORTS) {
  test(`${kind}: the SDK gets a token from the 401 and calls tools`, async () => {
    const provider = new ClientCredentialsProvider({
      clientId: 'carol',
      clientSecret: 'carol-secret',
      scope: 'mcp:tools',
      expectedIssuer: auth.issuer,
    });
    const statuses = [];
    const recording = async (url, init) => {
      const response = await fetch(url, init);
      if (String(url).startsWith(gw.url)) statuses.push(response.status);
      return response;
    };
    const client = new Client({ name: 'ts-oauth', version: '0.0.0' });
    // With client credentials the SDK authorizes in-band on the 401 and sends the request
    // again itself: `connect` needs no second try.
    await withTimeout(
      client.connect(makeTransport(gw, kind, { authProvider: provider, fetch: recording })),
      30_000,
      `${kind} client to authorize and connect`,
    );
    try {
      const result = await withTimeout(
        client.callTool({ name: 'echo', arguments: { text: 'authorized' } }),
        10_000,
        'echo',
      );
      assert.equal(toolText(result), 'authorized');
      assert.ok(provider.tokens()?.access_token, 'the SDK got a token');
      assert.ok(statuses.includes(401), `it started from a 401: ${statuses}`);
      assert.ok(statuses.some((s) => s < 300), `and was then served: ${statuses}`);
    } finally {
      await client.close();
    }
  });
}
