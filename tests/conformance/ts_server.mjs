#!/usr/bin/env node
// Conformance upstream: an MCP server built on the official TypeScript SDK
// (McpServer + StreamableHTTPServerTransport, stateless, SSE responses) that
// Keysmith's Rust integration tests put behind the gateway / tower layer.
//
// Usage: node ts_server.mjs --port N [--stateful]     (0 = let the OS choose)
// --stateful: sessions (Mcp-Session-Id), one server + transport per session,
// as the SDK's own stateful example keeps them.
// Prints exactly one line "listening <port>" once it accepts connections.
// Every tool that actually runs appends "<tool>\t<x-keysmith-service-user or ->"
// to the file named by $RAN_LOG (if set).
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
const stateful = process.argv.includes('--stateful');

// extra.requestInfo.headers is Object.fromEntries(webRequest.headers): lower-case
// names, repeated headers joined with ", ".
function headersOf(extra) {
  return extra?.requestInfo?.headers ?? {};
}

function ran(tool, extra) {
  if (!process.env.RAN_LOG) return;
  const user = headersOf(extra)['x-keysmith-service-user'] ?? '-';
  fs.appendFileSync(process.env.RAN_LOG, `${tool}\t${user}\n`);
}

const text = (t) => ({ content: [{ type: 'text', text: t }] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function buildServer() {
  const server = new McpServer({ name: 'conformance-ts', version: '1.0.0' });
  server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } },
    async ({ text: t }, extra) => { ran('echo', extra); return text(t); });
  server.registerTool('whoami', { description: 'Returns the x-keysmith-* request headers as JSON' },
    async (extra) => {
      ran('whoami', extra);
      const out = {};
      for (const [k, v] of Object.entries(headersOf(extra))) {
        if (k.startsWith('x-keysmith-')) out[k.slice('x-keysmith-'.length).replaceAll('-', '_')] = v;
      }
      return text(JSON.stringify(out));
    });
  server.registerTool('progress', { description: 'Sends `steps` progress notifications ~150 ms apart', inputSchema: { steps: z.number() } },
    async ({ steps }, extra) => {
      ran('progress', extra);
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
        }
        if (i < steps) await sleep(150);
      }
      return text('done');
    });
  server.registerTool('secret_admin', { description: 'The tool test keys may NOT call' },
    async (extra) => { ran('secret_admin', extra); return text('ran'); });
  registerResourcesAndPrompts(server);
  return server;
}

// Resources, prompts and completions a key's allowlists govern
// (tests/api/capabilities.rs): each read or completion is logged as
// `read:<uri>` (or `read:complete:<ref>`) in $RAN_LOG.
function registerResourcesAndPrompts(server) {
  const contents = (uri, t) => ({ contents: [{ uri, mimeType: 'text/plain', text: t }] });
  const fixed = [
    ['static-text', 'test://static-text', 'This is the content of the static text resource.'],
    ['public-readme', 'file:///public/readme.txt', 'public readme'],
    ['secret-passwd', 'file:///secret/passwd', 'root:secret'],
  ];
  for (const [name, uri, body] of fixed) {
    server.registerResource(name, uri, { mimeType: 'text/plain' },
      async (u, extra) => { ran(`read:${u.href}`, extra); return contents(u.href, body); });
  }
  for (const dir of ['public', 'secret']) {
    const complete = { name: (value) => { return [`${value}-completed`]; } };
    const template = new ResourceTemplate(`file:///${dir}/{name}`, { list: undefined, complete });
    server.registerResource(`${dir}-file`, template, { mimeType: 'text/plain' },
      async (u, { name }, extra) => { ran(`read:${u.href}`, extra); return contents(u.href, `${dir} file ${name}`); });
  }
  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' },
    async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] }));
  server.registerPrompt('greeting', {
    description: 'Greets someone',
    argsSchema: { name: completable(z.string(), (value) => [`${value}-completed`]) },
  }, async ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }] }));
  server.registerPrompt('secret_prompt', { description: 'The prompt test keys may NOT get' },
    async () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'the secret prompt' } }] }));
}

// --stateful: the transports of open sessions, by session id.
const sessions = new Map();

async function handleInSession(req, res) {
  const id = req.headers['mcp-session-id'];
  let transport = id ? sessions.get(id) : undefined;
  if (!transport && !id) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: false,
      onsessioninitialized: (sid) => { sessions.set(sid, transport); },
    });
    transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
    await buildServer().connect(transport);
  }
  if (!transport) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
    return;
  }
  await transport.handleRequest(req, res);
}

const httpServer = http.createServer(async (req, res) => {
  if (stateful) {
    try {
      await handleInSession(req, res);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: String(e) }, id: null }));
      }
    }
    return;
  }
  // Stateless: a fresh server + transport for each HTTP request.
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: false });
  res.on('close', () => { transport.close(); server.close(); });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (e) {
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: String(e) }, id: null }));
    }
  }
});

httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

// Exit when our parent goes away, so no server outlives the test that started it.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM'); }, 500).unref();

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    httpServer.close();
    httpServer.closeAllConnections();
    process.exit(0);
  });
}
