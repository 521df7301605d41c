#!/usr/bin/env python3
"""OAuth end to end with the official Python SDK client's own OAuth support
(`mcp.client.auth.OAuthClientProvider`, mcp 2.x), run by Keysmith's Rust
integration tests against `keysmith gateway --resource`:

1. initialize without a token: the SDK discovers from the 401, registers
   (RFC 7591), starts PKCE and prints `AUTHORIZE <url>` (the test drives the
   consent in Chromium); the browser lands on this script's loopback
   /callback, the SDK checks state and iss and redeems the code;
2. tools are listed and `whoami` is called (allowed);
3. its access token's lifetime over, the SDK refreshes (rotating the
   refresh token) and calls `whoami` again;
4. `prompts/get` outside the approved scopes is refused (the SDK's step-up
   asks for a second authorization, which this script declines).

Usage: python3 py_oauth_client.py <mcp url>
Prints `RESULT <json>` last and exits 0 even if steps fail.
"""

import http.server
import json
import queue
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

import anyio
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

answers: "queue.Queue[dict]" = queue.Queue()


class Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parsed = urlparse(self.path)
        if parsed.path != "/callback":
            self.send_response(404)
            self.end_headers()
            return
        answers.put({k: v[0] for k, v in parse_qs(parsed.query).items()})
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><p>Connected: you can close this window.</p>")

    def log_message(self, *args) -> None:  # quiet: stdout is the protocol
        pass


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def first_error(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


async def main(url: str, out: dict) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    redirect = f"http://127.0.0.1:{server.server_address[1]}/callback"
    metadata = OAuthClientMetadata(
        client_name="Python SDK e2e",
        redirect_uris=[redirect],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    storage = Memory()
    redirects: list[str] = []

    async def on_redirect(authorization_url: str) -> None:
        redirects.append(authorization_url)
        print(f"AUTHORIZE {authorization_url}", flush=True)

    async def on_callback() -> AuthorizationCodeResult:
        if len(redirects) > 1:
            raise RuntimeError("a second authorization (step-up) is not approved in this test")
        got = await anyio.to_thread.run_sync(lambda: answers.get(timeout=120))
        out["callback_params"] = sorted(got)
        return AuthorizationCodeResult(code=got.get("code", ""), state=got.get("state"), iss=got.get("iss"))

    provider = OAuthClientProvider(url, metadata, storage, on_redirect, on_callback)
    async with create_mcp_http_client(auth=provider) as client, streamable_http_client(url, http_client=client) as (r, w):
        async with ClientSession(r, w) as session:
            with anyio.fail_after(150):
                await session.initialize()
            out["client_id"] = storage.client.client_id if storage.client else None
            out["scope"] = storage.tokens.scope if storage.tokens else None
            out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            result = await session.call_tool("whoami", {})
            out["whoami"] = "".join(getattr(c, "text", "") for c in result.content)
    before = storage.tokens.refresh_token if storage.tokens else None
    # Its access token's lifetime over: the SDK refreshes before the next
    # request, at the token endpoint it discovered. (A provider made afresh
    # on stored tokens has no metadata in memory and would POST the refresh
    # to `{server origin}/token`: mcp 2.3.0 falls back to a full
    # authorization then.)
    provider.context.token_expiry_time = time.time() - 1
    token_answers: list = []

    async def on_response(resp) -> None:
        if resp.request.url.path.endswith("/token"):
            await resp.aread()
            token_answers.append(f"{resp.status_code} {resp.text[:200]}")

    out["token_answers"] = token_answers
    async with create_mcp_http_client(auth=provider) as client, streamable_http_client(url, http_client=client) as (r, w):
        client.event_hooks = {"request": [], "response": [on_response]}
        async with ClientSession(r, w) as session:
            with anyio.fail_after(60):
                await session.initialize()
            result = await session.call_tool("whoami", {})
            out["after_refresh"] = "".join(getattr(c, "text", "") for c in result.content)
    out["refresh_rotated"] = bool(storage.tokens and storage.tokens.refresh_token and storage.tokens.refresh_token != before)
    # The SDK answers a 403 insufficient_scope with a second authorization
    # (step-up), which this script declines: that ends the connection.
    try:
        async with create_mcp_http_client(auth=provider) as client, streamable_http_client(url, http_client=client) as (r, w):
            async with ClientSession(r, w) as session:
                with anyio.fail_after(60):
                    await session.initialize()
                await session.get_prompt("secret_prompt", {})
                out["outside_scope"] = "allowed?!"
    except BaseException as e:  # noqa: BLE001 - a refusal is the expected answer
        out["outside_scope"] = first_error(e)

    out["authorizations"] = len(redirects)
    server.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: py_oauth_client.py <mcp url>", file=sys.stderr)
        sys.exit(2)
    result: dict = {}
    try:
        anyio.run(main, sys.argv[1], result)
    except BaseException as e:  # noqa: BLE001 - failures are data
        result["error"] = first_error(e)
    print(f"RESULT {json.dumps(result)}", flush=True)
