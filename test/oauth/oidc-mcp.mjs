// An OAuth-protected MCP server for Countersign's real-peer tests:
// oidc-provider as the authorization server (dynamic registration, PKCE
// S256, RFC 8707 resource indicators with JWT access tokens whose audience
// is the MCP server, RFC 9207 iss, refresh token rotation, revocation) and
// an MCP server from @modelcontextprotocol/sdk that accepts only those
// tokens. The login and consent steps approve at once, as a person would.
//
//   PEERS_DIR=../peers AS_PORT=… MCP_PORT=… ACCESS_TTL=5 \
//     ../peers/node_modules/.bin/node --require ./loopback-sync.cjs oidc-mcp.mjs
//
// The authorization server is http://127.0.0.1:AS_PORT, the MCP endpoint
// http://127.0.0.1:MCP_PORT/mcp. It prints "ready" on stdout once both
// listen, and one JSON line per token event on stderr ("token issued",
// "token refused") for the test to read.
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The packages are installed in test/peers (PEERS_DIR), not beside this file.
const peersDir = process.env.PEERS_DIR || new URL('../peers', import.meta.url).pathname;
const peers = createRequire(`${peersDir}/package.json`);
const load = (name) => import(pathToFileURL(peers.resolve(name)).href);
const { default: Provider, errors } = await load('oidc-provider');
const jose = await load('jose');
const { McpServer } = await load('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/server/streamableHttp.js');

const AS_PORT = Number(process.env.AS_PORT);
const MCP_PORT = Number(process.env.MCP_PORT);
const ACCESS_TTL = Number(process.env.ACCESS_TTL || 5);
if (!AS_PORT || !MCP_PORT) {
  console.error('set AS_PORT and MCP_PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${AS_PORT}`;
const resource = `http://127.0.0.1:${MCP_PORT}/mcp`;
const prmURL = `http://127.0.0.1:${MCP_PORT}/.well-known/oauth-protected-resource/mcp`;
const event = (e) => console.error(JSON.stringify(e));

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'ES256' };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  scopes: ['offline_access', 'mcp:tools'],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    id_token_signed_response_alg: 'ES256', // the only key is an EC one
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: 'mcp:tools',
          audience: resource,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  // oidc-provider drops offline_access unless prompt=consent (OIDC Core
  // §11), which Countersign does not send: issue refresh tokens to every
  // client registered for the refresh_token grant instead.
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
});
provider.on('grant.success', (ctx) => event({ event: 'token issued', grant: ctx.oidc.params.grant_type }));
provider.on('grant.error', (ctx, err) => event({ event: 'token refused', grant: ctx.oidc.params?.grant_type, error: err.error }));
provider.on('grant.revoked', () => event({ event: 'revoked' }));

// The person: signs in as test-user and grants what is asked, at once.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: 'test-user' } }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const asCallback = provider.callback();
const as = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      event({ event: 'interaction failed', error: String(err) });
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  asCallback(req, res);
});

// The MCP server: accepts only this issuer's JWTs for this resource.
const jwks = jose.createLocalJWKSet({ keys: [{ ...privateKey.export({ format: 'jwk' }), d: undefined, kid: 'test', use: 'sig', alg: 'ES256' }] });

function unauthorized(res, error) {
  res.writeHead(401, {
    'WWW-Authenticate': `Bearer error="invalid_token", error_description="${error}", resource_metadata="${prmURL}"`,
    'Content-Type': 'application/json',
  });
  res.end(JSON.stringify({ error: 'invalid_token', error_description: error }));
}

function mcpServer(claims) {
  const server = new McpServer({ name: 'oidc-protected', version: '1.0.0' });
  server.tool('whoami', 'Tells who the token is for', async () => ({
    content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, aud: claims.aud, scope: claims.scope, iss: claims.iss }) }],
  }));
  return server;
}

const mcp = http.createServer(async (req, res) => {
  if (req.url === '/.well-known/oauth-protected-resource/mcp') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ resource, authorization_servers: [issuer], scopes_supported: ['mcp:tools'] }));
    return;
  }
  if (!req.url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  const auth = req.headers.authorization || '';
  if (!auth.startsWith('Bearer ')) return unauthorized(res, 'no token');
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(auth.slice(7), jwks, { issuer, audience: resource }));
  } catch (err) {
    event({ event: 'token refused by the MCP server', error: err.code || String(err) });
    return unauthorized(res, 'token not accepted');
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const server = mcpServer(claims);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});

as.listen(AS_PORT, () => mcp.listen(MCP_PORT, () => console.log('ready')));
