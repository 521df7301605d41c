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
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
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
  return server;
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
