#!/usr/bin/env node
// Conformance client: the official TypeScript SDK Client over
// StreamableHTTPClientTransport, run by Keysmith's Rust integration tests
// against the gateway (or directly against an upstream).
//
// Usage: KEYSMITH_KEY=... node ts_client.mjs <url> <basic|progress|initialize|limited>
// (`limited`: `whoami` twice, for a key whose rate admits one call).
// Sends "Authorization: Bearer $KEYSMITH_KEY" unless the variable is empty.
// Prints ONE JSON object on stdout and exits 0 even if calls fail:
//   {"initialize": "ok" | {"error", "status", "www_authenticate"},
//    "tools": [...] | null, "calls": [...], "progress": [ms, ...]}
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, scenario] = process.argv.slice(2);
if (!url || !['basic', 'progress', 'initialize', 'limited'].includes(scenario)) {
  console.error('usage: ts_client.mjs <url> <basic|progress|initialize|limited>');
  process.exit(2);
}

const headers = {};
if (process.env.KEYSMITH_KEY) headers.Authorization = `Bearer ${process.env.KEYSMITH_KEY}`;

// Remember the last HTTP error response so failures can report status and
// WWW-Authenticate (the SDK's own errors only carry the body text).
let lastError = null;
async function recordingFetch(input, init) {
  const res = await fetch(input, init);
  if (!res.ok && init?.method === 'POST') {
    lastError = { status: res.status, www_authenticate: res.headers.get('www-authenticate') };
  }
  return res;
}

const out = { initialize: null, tools: null, calls: [], progress: [] };
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: recordingFetch });
const client = new Client({ name: 'keysmith-conformance-ts', version: '1.0.0' });

function errorObject(e) {
  const status = lastError?.status ?? (typeof e?.code === 'number' && e.code >= 100 && e.code < 600 ? e.code : null);
  return { error: String(e?.message ?? e), status, www_authenticate: lastError?.www_authenticate ?? null };
}

async function call(name, args = {}, options = {}) {
  lastError = null;
  try {
    const r = await client.callTool({ name, arguments: args }, undefined, options);
    const t = (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
    out.calls.push(r.isError ? { tool: name, ok: false, error: t } : { tool: name, ok: true, text: t });
  } catch (e) {
    const entry = { tool: name, ok: false, error: String(e?.message ?? e) };
    if (lastError) entry.status = lastError.status;
    out.calls.push(entry);
  }
}

async function main() {
  try {
    lastError = null;
    await client.connect(transport);
    out.initialize = 'ok';
  } catch (e) {
    out.initialize = errorObject(e);
    return;
  }
  if (scenario === 'basic') {
    try {
      out.tools = (await client.listTools()).tools.map((t) => t.name);
    } catch (e) {
      out.tools = null;
    }
    await call('echo', { text: 'hi' });
    await call('whoami');
    await call('secret_admin');
  } else if (scenario === 'limited') {
    await call('whoami');
    await call('whoami');
  } else if (scenario === 'progress') {
    const start = performance.now();
    await call('progress', { steps: 3 }, {
      onprogress: () => out.progress.push(Math.round(performance.now() - start)),
      timeout: 30000,
    });
  }
}

await main();
process.stdout.write(JSON.stringify(out) + '\n');
await client.close().catch(() => {});
process.exit(0);
