// Session churn: 50 sessions of each transport opened, used and closed in a loop; then
// /healthz must come back to 0 legacy and 0 streamable sessions (nothing leaks).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { NO_GRACE_CONFIG, connectClient, health, startGateway, toolText, waitForHealth } from './lib/gateway.mjs';

const ROUNDS = 50;

let gw;
before(async () => {
  // legacy_grace_secs = 0: a legacy session ends as soon as its event stream closes.
  gw = await startGateway({ config: NO_GRACE_CONFIG });
});
after(async () => {
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
});

test(`${ROUNDS} streamable sessions opened and terminated leave none behind`, async () => {
  assert.deepEqual((await health(gw)).sessions, { legacy: 0, streamable: 0, parked: 0 });
  const ids = new Set();
  for (let i = 0; i < ROUNDS; i++) {
    const { client, transport } = await connectClient(gw, 'streamable');
    ids.add(transport.sessionId);
    const result = await client.callTool({ name: 'echo', arguments: { text: `round ${i}` } });
    assert.equal(toolText(result), `round ${i}`);
    await transport.terminateSession();
    await client.close();
  }
  assert.equal(ids.size, ROUNDS, 'every session got its own id');
  const body = await waitForHealth(gw, (b) => b.sessions.streamable === 0, {
    what: `0 streamable sessions after ${ROUNDS} terminated`,
  });
  assert.equal(body.status, 'ok');
});

test(`${ROUNDS} legacy SSE sessions opened and closed leave none behind`, async () => {
  for (let i = 0; i < ROUNDS; i++) {
    const { client } = await connectClient(gw, 'sse');
    const result = await client.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    assert.equal(toolText(result), String(i + 1));
    await client.close();
  }
  await waitForHealth(gw, (b) => b.sessions.legacy === 0, {
    what: `0 legacy sessions after ${ROUNDS} closed`,
  });
});

test(`${ROUNDS} rounds of both at once, then /healthz shows 0 and 0`, async () => {
  for (let i = 0; i < ROUNDS; i++) {
    const [s, l] = await Promise.all([connectClient(gw, 'streamable'), connectClient(gw, 'sse')]);
    const [st, lt] = await Promise.all([
      s.client.callTool({ name: 'echo', arguments: { text: `s${i}` } }),
      l.client.callTool({ name: 'echo', arguments: { text: `l${i}` } }),
    ]);
    assert.equal(toolText(st), `s${i}`);
    assert.equal(toolText(lt), `l${i}`);
    await Promise.all([s.transport.terminateSession().then(() => s.client.close()), l.client.close()]);
  }
  const body = await waitForHealth(gw, (b) => b.sessions.legacy === 0 && b.sessions.streamable === 0, {
    what: '0 legacy and 0 streamable sessions',
  });
  assert.deepEqual(body, { status: 'ok', sessions: { legacy: 0, streamable: 0, parked: 0 } });
});
