#!/usr/bin/env python3
"""A deliberately CARELESS JSON-RPC "MCP" upstream (standard library only, no SDK).

Keysmith's tests put it behind the gateway to show that whatever the gateway
lets through is what a lenient upstream would act on: for any HTTP method with a
body and any Content-Type/Accept it un-gzips/inflates the body (Content-Encoding
gzip or deflate, also chunked transfer), decodes it as UTF-16 (with BOM) or
utf-8-sig, and `json.loads` it: duplicate keys (last wins), NaN/Infinity and huge
numbers all accepted. A `tools/call` object "runs" params.name, whatever it is,
and appends "<name>\t<x-keysmith-service-user or ->" to $RAN_LOG. Batches (JSON
arrays) are processed element by element. It sends no progress notifications.

Usage: python3 careless_upstream.py --port N   (0 = let the OS choose)
Prints exactly one line "listening <port>" once it accepts connections.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.set_int_max_str_digits(0)  # accept arbitrarily huge integers too
TOOLS = ["echo", "whoami", "progress", "secret_admin"]
LOG_LOCK = threading.Lock()


def decode_body(raw: bytes, encoding: str) -> str:
    for enc in [e.strip().lower() for e in encoding.split(",") if e.strip()][::-1]:
        if enc in ("gzip", "x-gzip"):
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                raw = zlib.decompress(raw, -zlib.MAX_WBITS)  # raw deflate
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig", errors="replace")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def read_raw_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else None

    def reply(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        raw = self.read_raw_body()
        if not raw:
            return self.reply(405, b'{"error":"send a JSON-RPC body"}')
        try:
            msg = json.loads(decode_body(raw, self.headers.get("Content-Encoding", "")))
        except Exception as e:  # noqa: BLE001
            err = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": f"Parse error: {e}"}}
            return self.reply(400, json.dumps(err).encode())
        if isinstance(msg, list):
            answers = [a for a in (self.one(m) for m in msg) if a is not None]
            return self.reply(200, json.dumps(answers).encode()) if answers else self.reply(202)
        answer = self.one(msg)
        return self.reply(200, json.dumps(answer).encode()) if answer is not None else self.reply(202)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET = do_OPTIONS = handle_any

    def one(self, msg):
        """Answer one JSON-RPC message; None for notifications and non-requests."""
        if not isinstance(msg, dict) or "method" not in msg:
            return None
        method, params = msg.get("method"), msg.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "careless-upstream", "version": "0"}}
        elif method == "tools/list":
            result = {"tools": [{"name": t, "inputSchema": {"type": "object"}} for t in TOOLS]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": self.run_tool(params)}], "isError": False}
        else:
            result = {}
        return None if "id" not in msg else {"jsonrpc": "2.0", "id": msg["id"], "result": result}

    def run_tool(self, params: dict) -> str:
        name = params.get("name")
        args = params.get("arguments") or {}
        user = self.headers.get("x-keysmith-service-user", "-")
        if os.environ.get("RAN_LOG"):
            with LOG_LOCK, open(os.environ["RAN_LOG"], "a", encoding="utf-8") as f:
                f.write(f"{name}\t{user}\n")
        if name == "echo":
            return str(args.get("text", "")) if isinstance(args, dict) else ""
        if name == "whoami":
            return json.dumps({k.lower()[len("x-keysmith-"):].replace("-", "_"): v
                               for k, v in self.headers.items() if k.lower().startswith("x-keysmith-")})
        if name == "progress":
            return "done"
        return "ran"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client hanging up is not news
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def exit_with_parent() -> None:
    """SIGTERM ourselves when our parent goes away (e.g. the test killed the pyenv
    shim's bash wrapper rather than this process), so no server outlives its test."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    server = Server(("127.0.0.1", ap.parse_args().port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    exit_with_parent()
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
