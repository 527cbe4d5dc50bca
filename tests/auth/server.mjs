// A real OAuth 2.1 authorization server for mcpgw's auth tests, and a token minter beside it.
//
//   node tests/auth/server.mjs RESOURCE
//
// prints one JSON line, {"issuer": "http://127.0.0.1:P1", "minter": "http://127.0.0.1:P2"},
// then serves until stdin closes (the test that started it ends).
//
// - issuer: oidc-provider, issuing JWT access tokens (ES256, typ at+jwt) by the client
//   credentials grant, with resource indicators (RFC 8707): a token for RESOURCE has it as
//   its audience and is granted the scopes asked for among "mcp:tools mcp:read". Clients
//   alice/alice-secret and bob/bob-secret (client_secret_post), carol/carol-secret
//   (client_secret_basic); each token's `groups` claim is its client's (alice:
//   ["engineering"], bob: ["support"], carol: none), for the policy tests. Any other resource
//   asked for gets a token for that audience (a wrong audience for mcpgw).
// - minter: a second issuer with its own key, for the tokens an authorization server will not
//   issue. POST /mint with {"claims": {...}, "key": "known"|"unknown", "kid": "...",
//   "alg": "ES256"|"none"} answers the token. Its keys are at /jwks; its metadata at
//   /.well-known/openid-configuration.
// - GET {minter}/stats: {"issuer_jwks": n, "minter_jwks": m}, the fetches of each JWKS.
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const RESOURCE = process.argv[2];
if (!RESOURCE) {
  console.error('usage: node server.mjs RESOURCE');
  process.exit(64);
}

const stats = { issuer_jwks: 0, minter_jwks: 0 };

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}`;
}

async function privateJwk(kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const pub = { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { privateKey, jwk, pub };
}

// ---- the authorization server ----------------------------------------------------------
const GROUPS = { alice: ['engineering'], bob: ['support'] };
const issuerServer = http.createServer();
const issuer = await listen(issuerServer);
const signing = await privateJwk('as-1');
const provider = new Provider(issuer, {
  // carol authenticates with HTTP Basic, as the TypeScript SDK's client credentials
  // provider does; the others in the body, as the Python SDK's may.
  clients: [
    ['alice', 'client_secret_post'],
    ['bob', 'client_secret_post'],
    ['carol', 'client_secret_basic'],
  ].map(([name, method]) => ({
    client_id: name,
    client_secret: `${name}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: method,
    id_token_signed_response_alg: 'ES256',
    scope: 'mcp:tools mcp:read',
  })),
  jwks: { keys: [signing.jwk] },
  scopes: ['mcp:tools', 'mcp:read'],
  extraTokenClaims: (_ctx, token) => ({ groups: GROUPS[token.clientId] ?? [] }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => ({
        scope: 'mcp:tools mcp:read',
        audience: resourceIndicator,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.use(async (ctx, next) => {
  if (ctx.path === '/jwks') stats.issuer_jwks += 1;
  await next();
});
issuerServer.on('request', provider.callback());

// ---- the minter: a second issuer, and tokens no authorization server would issue -----------
const minterServer = http.createServer();
const minter = await listen(minterServer);
const known = await privateJwk('minted-1');
const unknown = await privateJwk('never-published');

function b64(text) {
  return Buffer.from(text).toString('base64url');
}

async function mint({ claims, key = 'known', kid, alg = 'ES256' }) {
  const header = { alg, typ: 'at+jwt', kid: kid ?? (key === 'known' ? known.jwk.kid : unknown.jwk.kid) };
  if (alg === 'none') {
    return `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}.`;
  }
  const signer = key === 'known' ? known.privateKey : unknown.privateKey;
  return new jose.SignJWT(claims).setProtectedHeader(header).sign(signer);
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

minterServer.on('request', (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
        return json(res, 200, { issuer: minter, jwks_uri: `${minter}/jwks` });
      }
      if (req.method === 'GET' && req.url === '/jwks') {
        stats.minter_jwks += 1;
        return json(res, 200, { keys: [known.pub] });
      }
      if (req.method === 'GET' && req.url === '/stats') {
        return json(res, 200, stats);
      }
      if (req.method === 'POST' && req.url === '/mint') {
        const token = await mint(JSON.parse(Buffer.concat(chunks).toString()));
        return json(res, 200, { token });
      }
      return json(res, 404, { error: 'not_found' });
    } catch (e) {
      return json(res, 500, { error: String(e) });
    }
  });
});

console.log(JSON.stringify({ issuer, minter }));
// The test holds stdin open; when it ends (or dies), so does this server.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
