#!/usr/bin/env node
// Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance)
// on Node 20, optionally sending a Keysmith key:
//
//   KEYSMITH_KEY=... KEYSMITH_KEY_HOST=127.0.0.1:8787 node conformance.mjs server --url ... --spec-version ...
//
// The suite imports `globSync` from `fs` (Node 22); on Node 20 the import is
// rewritten to take it from the `glob` package, in a copy next to the
// original (bare imports still resolve from there). It has no option for
// request headers and sends with `fetch` and `undici.request`, which share
// undici's global dispatcher (one that adds `Authorization` to requests for
// KEYSMITH_KEY_HOST reaches both), and with `http.request` (header
// validation scenarios), wrapped the same way.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, setGlobalDispatcher } from 'undici';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules/@modelcontextprotocol/conformance/dist');
const original = path.join(dist, 'index.js');
const patched = path.join(dist, 'index-node20.js');

function patchForNode20() {
  const source = fs.readFileSync(original, 'utf8');
  const fsImport = /import\{([^}]*)globSync as (\w+),([^}]*)\}from"fs";/;
  const match = source.match(fsImport);
  if (!match) throw new Error('conformance dist/index.js no longer imports globSync from fs: update conformance.mjs');
  const rewritten = source.replace(fsImport, `import{globSync as ${match[2]}}from"glob";import{${match[1]}${match[3]}}from"fs";`);
  fs.writeFileSync(patched, rewritten);
}

if (!fs.existsSync(patched) || fs.statSync(patched).mtimeMs < fs.statSync(original).mtimeMs) patchForNode20();

const key = process.env.KEYSMITH_KEY;
const keyHost = process.env.KEYSMITH_KEY_HOST;
if (key && keyHost) {
  const addKey = (dispatch) => (options, handler) => {
    if (String(options.origin ?? '').replace(/\/$/, '').endsWith(`//${keyHost}`)) {
      const headers = options.headers ?? {};
      // undici takes headers as an object, an array of pairs, or a flat array.
      if (Array.isArray(headers)) options.headers = [...headers, 'authorization', `Bearer ${key}`];
      else options.headers = { ...headers, authorization: `Bearer ${key}` };
    }
    return dispatch(options, handler);
  };
  setGlobalDispatcher(new Agent().compose(addKey));
  const request = http.request;
  http.request = (options, ...rest) => {
    if (typeof options === 'object' && !(options instanceof URL)
        && `${options.hostname ?? options.host}:${options.port}` === keyHost) {
      options = { ...options, headers: { ...options.headers, authorization: `Bearer ${key}` } };
    }
    return request(options, ...rest);
  };
}

process.argv.splice(1, 1, patched);
await import(pathToFileURL(patched).href);
