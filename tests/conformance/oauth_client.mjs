#!/usr/bin/env node
// OAuth end to end with the official TypeScript SDK client's own OAuth
// support (an OAuthClientProvider), run by Keysmith's Rust integration
// tests against `keysmith gateway --resource`:
//   1. connect without a token: the 401 names the resource metadata, the
//      SDK discovers the issuer, registers (RFC 7591), starts PKCE and
//      prints `AUTHORIZE <url>` (the test drives the consent in Chromium);
//   2. the browser lands on this script's loopback /callback: state and
//      iss (RFC 9207) are checked, finishAuth redeems the code;
//   3. a new connection lists tools and calls `whoami` (allowed);
//   4. `prompts/get` outside the approved scopes is refused (403
//      insufficient_scope; the SDK's step-up ends here);
//   5. the access token is spoiled: the 401 makes the SDK refresh (rotating
//      the refresh token) and the call succeeds.
// Usage: node oauth_client.mjs <mcp url> <issuer>
// Prints `RESULT <json>` last and exits 0 even if steps fail.
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, issuer] = process.argv.slice(2);
if (!url || !issuer) {
  console.error('usage: oauth_client.mjs <mcp url> <issuer>');
  process.exit(2);
}
const out = { steps: [] };
const note = (step) => { out.steps.push(step); };

let deliver;
const callback = new Promise((resolve) => { deliver = resolve; });
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/callback') { res.statusCode = 404; res.end(); return; }
  deliver(Object.fromEntries(u.searchParams));
  res.setHeader('content-type', 'text/html');
  res.end('<!doctype html><p>Connected: you can close this window.</p>');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${server.address().port}/callback`;

const saved = { states: [] };
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: 'TS SDK e2e',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  state() { const s = `st-${Math.random().toString(36).slice(2)}`; saved.states.push(s); return s; },
  clientInformation() { return saved.client; },
  saveClientInformation(info) { saved.client = info; out.client_id = info.client_id; },
  tokens() { return saved.tokens; },
  saveTokens(tokens) { saved.tokens = tokens; out.tokens_saved = (out.tokens_saved ?? 0) + 1; },
  redirectToAuthorization(authorizationUrl) {
    out.authorizations = (out.authorizations ?? 0) + 1;
    console.log(`AUTHORIZE ${authorizationUrl.toString()}`);
  },
  saveCodeVerifier(verifier) { saved.verifier = verifier; },
  codeVerifier() { return saved.verifier; },
};

const transport = () => new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
const client = () => new Client({ name: 'keysmith-oauth-e2e', version: '1.0.0' });
const text = (result) => result.content?.map((c) => c.text).join('') ?? '';

try {
  const first = transport();
  try {
    await client().connect(first);
    note('connected without authorization?!');
  } catch (err) {
    note(`unauthorized: ${err.constructor.name}`);
  }
  const answer = await callback;
  out.state_ok = saved.states.includes(answer.state);
  out.iss_ok = answer.iss === issuer;
  if (!answer.code) throw new Error(`no code: ${JSON.stringify(answer)}`);
  if (!out.state_ok || !out.iss_ok) throw new Error(`state or iss mismatch: ${JSON.stringify(answer)}`);
  await first.finishAuth(answer.code);
  out.scope = saved.tokens?.scope;
  out.has_refresh = Boolean(saved.tokens?.refresh_token);

  const c = client();
  await c.connect(transport());
  out.tools = (await c.listTools()).tools.map((t) => t.name).sort();
  out.whoami = text(await c.callTool({ name: 'whoami', arguments: {} }));
  try {
    await c.getPrompt({ name: 'secret_prompt', arguments: {} });
    out.outside_scope = 'allowed?!';
  } catch (err) {
    out.outside_scope = String(err.message ?? err);
  }
  await c.close();

  const before = saved.tokens.refresh_token;
  saved.tokens = { ...saved.tokens, access_token: 'spoiled' };
  const again = client();
  await again.connect(transport());
  out.after_refresh = text(await again.callTool({ name: 'whoami', arguments: {} }));
  out.refresh_rotated = Boolean(saved.tokens.refresh_token) && saved.tokens.refresh_token !== before;
  await again.close();
} catch (err) {
  out.error = String(err.stack ?? err);
}
server.close();
console.log(`RESULT ${JSON.stringify(out)}`);
process.exit(0);
