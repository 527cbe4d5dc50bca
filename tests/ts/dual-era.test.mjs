// Every TypeScript client of the matrix (lib/clients.mjs: the SDK 2.x client in each
// version-negotiation mode, the SDK 1.x client on both transports) through mcpgw to a dual-era
// upstream: tests/fixture in its HTTP mode (`mcpgw-fixture --http`, rmcp's StreamableHttpService:
// sessions for `initialize`, 2026-07-28 requests statelessly, on one /mcp). Each client lists the
// fixture's tools, calls `test_simple_text`, `test_tool_with_progress` (progress 0, 50, 100 of
// 100), the multi round-trip `test_input_required_result_elicitation` (answered by the client's
// elicitation handler), and reads `test://static-text`.
//
// The multi round-trip tool needs both directions of mcpgw's bridge: the fixture answers it with
// an `InputRequiredResult`, which mcpgw relays to a modern client, and turns into an elicitation
// request on a handshake-era client's session (then retries the call with the answer). That is
// with the fixture configured `era = "modern"`; with `auto` (the default) a session's connection
// speaks the handshake era to it (its client's), where the fixture's multi round-trip tools
// refuse to run: there a handshake-era client calls the fixture's handshake-era `test_sampling`
// (a sampling request on its session) instead. Both settings run for every client.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { CLIENTS, callWithProgress, connectMatrixClient } from './lib/clients.mjs';
import { startFixture } from './lib/fixture.mjs';
import { startGateway, toolText, withTimeout } from './lib/gateway.mjs';
import { tomlString } from './lib/upstreams.mjs';

const OP_TIMEOUT_MS = 15_000;

/** `text` as a regular expression that matches it literally. */
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const MODERN = '2026-07-28';

const MODES = [
  { name: 'legacy', mode: 'legacy', era: 'legacy' },
  { name: 'auto', mode: 'auto', era: 'modern' },
  { name: `pinned to ${MODERN}`, mode: { pin: MODERN }, era: 'modern' },
];

/** A gateway config with the fixture as an http upstream of `era`. */
const fixtureConfig = (era, extra = []) =>
  [
    '[sessions]',
    'legacy_grace_secs = 0',
    '',
    '[upstreams.fixture]',
    'kind = "http"',
    `url = ${tomlString(fixture.url)}`,
    `era = "${era}"`,
    ...extra,
    '',
  ].join('\n');

let fixture;
/** A gateway per `era` setting of the fixture. */
const gateways = {};
before(async () => {
  fixture = await startFixture();
  for (const era of ['modern', 'auto']) gateways[era] = await startGateway({ config: fixtureConfig(era) });
});
after(async () => {
  for (const gw of Object.values(gateways)) {
    const exit = await gw.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${gw.logs()}`);
  }
  const fixtureExit = await fixture.stop();
  assert.deepEqual(fixtureExit, { code: 0, signal: null }, `mcpgw-fixture should exit 0 on SIGTERM\n${fixture.logs()}`);
});

for (const [upstreamEra, spec] of ['modern', 'auto'].flatMap((era) => CLIENTS.map((c) => [era, c]))) {
  const { name } = spec;
  // With `era = "auto"` a session reaches the fixture in the handshake era, where its multi
  // round-trip tools refuse to run and its sampling tool asks with a request (which 2026-07-28
  // forbids): each client era gets the fixture's tool of that era.
  const bridged = upstreamEra === 'modern' || spec.era === 'modern';
  describe(`${name} through mcpgw to the dual-era fixture (era = "${upstreamEra}")`, () => {
    let client;
    let connectError;
    const connected = () => {
      if (connectError) throw connectError;
      return client;
    };

    before(async () => {
      try {
        client = await connectMatrixClient(gateways[upstreamEra], spec, {
          elicit: () => ({ action: 'accept', content: { name: 'Ada' } }),
          sample: () => ({ model: 'm', role: 'assistant', content: { type: 'text', text: 'Paris' } }),
        });
      } catch (error) {
        connectError = new Error(`connect (${name}) failed: ${error?.message ?? error}`, { cause: error });
      }
    });
    after(async () => {
      await client?.close();
    });

    test(`connects in the ${spec.era} era`, () => {
      assert.equal(connected().era(), spec.era);
      assert.equal(connected().raw.getServerVersion()?.name, 'mcpgw');
    });

    test("listTools has the fixture's tools", async () => {
      const { tools } = await withTimeout(connected().listTools(), OP_TIMEOUT_MS, 'listTools');
      const names = tools.map((t) => t.name);
      for (const tool of ['test_simple_text', 'test_tool_with_progress', 'test_input_required_result_elicitation']) {
        assert.ok(names.includes(tool), `tool ${tool} missing from ${JSON.stringify(names)}`);
      }
    });

    test('test_simple_text', async () => {
      const result = await withTimeout(
        connected().callTool({ name: 'test_simple_text', arguments: {} }),
        OP_TIMEOUT_MS,
        'callTool test_simple_text',
      );
      assert.equal(toolText(result), 'This is a simple text response for testing.');
    });

    test('test_tool_with_progress reports progress', async () => {
      const result = await callWithProgress(
        connected(),
        { name: 'test_tool_with_progress', arguments: {} },
        [
          [0, 100],
          [50, 100],
          [100, 100],
        ],
        OP_TIMEOUT_MS,
      );
      assert.equal(toolText(result), 'Tool with progress executed successfully');
    });

    if (bridged) {
      test("the multi round-trip tool is answered by the client's elicitation handler", async () => {
        const result = await withTimeout(
          connected().callTool({ name: 'test_input_required_result_elicitation', arguments: {} }),
          OP_TIMEOUT_MS,
          'callTool test_input_required_result_elicitation',
        );
        assert.equal(toolText(result), 'Hello, Ada!');
      });
    } else {
      test("the handshake-era sampling tool is answered by the client's sampling handler", async () => {
        const result = await withTimeout(
          connected().callTool({ name: 'test_sampling', arguments: { prompt: 'Capital of France?' } }),
          OP_TIMEOUT_MS,
          'callTool test_sampling',
        );
        assert.equal(toolText(result), 'LLM response: Paris');
      });
    }

    test('readResource test://static-text', async () => {
      const { contents } = await withTimeout(
        connected().readResource({ uri: 'test://static-text' }),
        OP_TIMEOUT_MS,
        'readResource',
      );
      assert.equal(contents[0]?.text, 'This is the content of the static text resource.', JSON.stringify(contents));
    });
  });
}

// mcpgw renames the fixture's tools (`prefix = "fx_"`) and speaks 2026-07-28 to it (`era =
// "modern"`, for the session too): the call it
// forwards must carry the fixture's own tool name in `Mcp-Name` and the `x-mcp-header` argument in
// `Mcp-Param-Region` (base64-encoded when not plain ASCII), whatever era the client is of. The
// fixture checks the header against the body and logs what it got.
describe('mcpgw prefixing the dual-era fixture: the 2026 headers name what the fixture knows', () => {
  let prefixed;
  before(async () => {
    prefixed = await startGateway({ config: fixtureConfig('modern', ['prefix = "fx_"']) });
  });
  after(async () => {
    const exit = await prefixed.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `mcpgw should exit 0 on SIGTERM\n${prefixed.logs()}`);
  });

  for (const { name, mode } of [MODES[0], MODES[2]]) {
    test(`a ${name} client calls fx_test_custom_headers`, async () => {
      const client = new Client({ name: 'mcpgw-prefix-headers', version: '0.0.0' }, { versionNegotiation: { mode } });
      await withTimeout(
        client.connect(new StreamableHTTPClientTransport(new URL(prefixed.mcpUrl))),
        OP_TIMEOUT_MS,
        'connect',
      );
      try {
        const { tools } = await withTimeout(client.listTools(), OP_TIMEOUT_MS, 'listTools');
        assert.ok(tools.some((t) => t.name === 'fx_test_custom_headers'), JSON.stringify(tools.map((t) => t.name)));
        for (const region of ['eu-west', 'Zürich']) {
          const mark = fixture.mark();
          const result = await withTimeout(
            client.callTool({ name: 'fx_test_custom_headers', arguments: { region } }),
            OP_TIMEOUT_MS,
            'callTool fx_test_custom_headers',
          );
          assert.equal(toolText(result), `region: ${region}`, JSON.stringify(result));
          const encoded = /^[\x20-\x7e]*$/.test(region)
            ? region
            : `=?base64?${Buffer.from(region, 'utf8').toString('base64')}?=`;
          // The attempt the fixture accepted. (An earlier one may lack Mcp-Param-Region: rmcp's
          // client sometimes builds a call before it has the tool's schema from tools/list, under
          // load; the fixture refuses that with -32020 and mcpgw retries once with the schema.)
          const expected = `test_custom_headers Mcp-Name=test_custom_headers Mcp-Param-Region=${encoded}`;
          const seen = await fixture.waitForLog(new RegExp(`^${escapeRegExp(expected)}$`), OP_TIMEOUT_MS, mark);
          assert.equal(seen.text, expected);
          assert.doesNotMatch(
            fixture.logs(),
            /test_custom_headers Mcp-Name=(?!test_custom_headers )/,
            'every attempt named the fixture\'s own tool',
          );
        }
      } finally {
        await client.close();
      }
    });
  }
});
