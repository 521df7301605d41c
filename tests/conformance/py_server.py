#!/usr/bin/env python3
"""Conformance upstream: an MCP server built on the official Python SDK
(`mcp` 2.x MCPServer — what v1 called FastMCP —, streamable HTTP, stateless, SSE responses)
served by uvicorn, which Keysmith's Rust integration tests put behind the gateway.

Usage: python3 py_server.py --port N      (0 = let the OS choose)
Prints exactly one line "listening <port>" once it accepts connections.
Every tool that actually runs appends "<tool>\t<x-keysmith-service-user or ->"
to the file named by $RAN_LOG (if set). The MCP endpoint is /mcp.
"""

import signal
import sys

# SIGTERM before the server is up (the imports below take a while): exit 0 too.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import uvicorn  # noqa: E402
from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402
from mcp.types import Completion  # noqa: E402

server = MCPServer("conformance-py", version="1.0.0", log_level="WARNING")


def headers(ctx: Context) -> dict[str, str]:
    # Starlette Headers: case-insensitive; .get() returns the FIRST copy of a repeated header.
    h = ctx.headers
    return {k: h.get(k) for k in h.keys()} if h is not None else {}


def ran(tool: str, ctx: Context) -> None:
    log = os.environ.get("RAN_LOG")
    if log:
        user = headers(ctx).get("x-keysmith-service-user", "-")
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{tool}\t{user}\n")


@server.tool(description="Returns its text", structured_output=False)
def echo(text: str, ctx: Context) -> str:
    ran("echo", ctx)
    return text


@server.tool(description="Returns the x-keysmith-* request headers as JSON", structured_output=False)
def whoami(ctx: Context) -> str:
    ran("whoami", ctx)
    prefix = "x-keysmith-"
    out = {k[len(prefix):].replace("-", "_"): v for k, v in headers(ctx).items() if k.startswith(prefix)}
    return json.dumps(out)


@server.tool(description="Sends `steps` progress notifications ~150 ms apart", structured_output=False)
async def progress(steps: float, ctx: Context) -> str:
    ran("progress", ctx)
    n = int(steps)
    for i in range(1, n + 1):
        await ctx.report_progress(i, n)  # a no-op when the client sent no progressToken
        if i < n:
            await asyncio.sleep(0.15)
    return "done"


@server.tool(description="The tool test keys may NOT call", structured_output=False)
def secret_admin(ctx: Context) -> str:
    ran("secret_admin", ctx)
    return "ran"


# Fixtures the official conformance suite's scenarios read (tests/api/conformance/suite.rs):
# a 2026-07-28 client names them in the Mcp-Name header, which the gateway checks.
@server.prompt(name="test_simple_prompt", description="A prompt without arguments")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@server.resource("test://static-text", name="static-text", mime_type="text/plain")
def static_text() -> str:
    read("test://static-text", None)
    return "This is the content of the static text resource."


# Resources, prompts and completions a key's allowlists govern (tests/api/capabilities.rs).
def read(uri: str, ctx: Context | None) -> None:
    """Logs a resource read or a completion to $RAN_LOG as `read:<uri>` (static
    resources get no Context in this SDK: their user is `-`)."""
    log = os.environ.get("RAN_LOG")
    if log:
        user = headers(ctx).get("x-keysmith-service-user", "-") if ctx is not None else "-"
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"read:{uri}\t{user}\n")


@server.resource("file:///public/readme.txt", name="public-readme", mime_type="text/plain")
def public_readme() -> str:
    read("file:///public/readme.txt", None)
    return "public readme"


@server.resource("file:///secret/passwd", name="secret-passwd", mime_type="text/plain")
def secret_passwd() -> str:
    read("file:///secret/passwd", None)
    return "root:secret"


@server.resource("file:///public/{name}", name="public-file", mime_type="text/plain")
def public_file(name: str, ctx: Context) -> str:
    read(f"file:///public/{name}", ctx)
    return f"public file {name}"


@server.resource("file:///secret/{name}", name="secret-file", mime_type="text/plain")
def secret_file(name: str, ctx: Context) -> str:
    read(f"file:///secret/{name}", ctx)
    return f"secret file {name}"


@server.prompt(name="greeting", description="Greets someone")
def greeting(name: str) -> str:
    return f"Hello, {name}!"


@server.prompt(name="secret_prompt", description="The prompt test keys may NOT get")
def secret_prompt() -> str:
    return "the secret prompt"


@server.completion()
async def complete(ref, argument, context):
    read(f"complete:{getattr(ref, 'name', None) or getattr(ref, 'uri', None)}", None)
    return Completion(values=[f"{argument.value}-completed"])


class QuietExitServer(uvicorn.Server):
    """uvicorn.Server that shuts down gracefully on SIGTERM/SIGINT and then simply
    returns (stock uvicorn re-raises the signal afterwards, so the exit code was 143)."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def exit_with_parent() -> None:
    """SIGTERM ourselves when our parent goes away (e.g. the test killed the pyenv
    shim's bash wrapper rather than this process), so no server outlives its test."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


async def main(port: int, stateful: bool) -> None:
    # Accept Host 127.0.0.1 / localhost / [::1] with any port (the gateway may
    # forward its own Host or the upstream's), keeping DNS-rebinding checks on.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "localhost", "127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    app = server.streamable_http_app(stateless_http=not stateful, json_response=False, transport_security=security)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    uv = QuietExitServer(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))

    async def announce() -> None:
        while not uv.started:
            await asyncio.sleep(0.01)
        print(f"listening {sock.getsockname()[1]}", flush=True)

    task = asyncio.create_task(announce())
    await uv.serve(sockets=[sock])  # returns after a graceful shutdown on SIGTERM/SIGINT
    task.cancel()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stateful", action="store_true", help="sessions (Mcp-Session-Id), as the SDK's default")
    exit_with_parent()
    args = ap.parse_args()
    asyncio.run(main(args.port, args.stateful))
