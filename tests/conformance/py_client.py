#!/usr/bin/env python3
"""Conformance client: the official Python SDK (`mcp` 2.x) ClientSession over
streamable HTTP, run by Keysmith's Rust integration tests against the gateway
(or directly against an upstream).

Usage: KEYSMITH_KEY=... python3 py_client.py <url> <basic|progress|initialize|limited>
(`limited`: `whoami` twice, for a key whose rate admits one call).
Sends "Authorization: Bearer $KEYSMITH_KEY" unless the variable is empty.
Prints ONE JSON object on stdout and exits 0 even if calls fail:
  {"initialize": "ok" | {"error", "status", "www_authenticate"},
   "tools": [...] | null, "calls": [...], "progress": [ms, ...]}
In mcp 2.x `streamablehttp_client(url, headers=...)` is gone: the transport is
`streamable_http_client(url, http_client=...)` and headers live on the httpx2 client.
"""

import json
import os
import sys
import time

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

SCENARIOS = ("basic", "progress", "initialize", "limited")


def fail(e: BaseException) -> str:
    # Unwrap anyio/ExceptionGroup wrappers to the first real error.
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return str(e) or type(e).__name__


async def run(url: str, scenario: str, out: dict) -> None:
    key = os.environ.get("KEYSMITH_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    last: dict = {}  # the last POST answered with HTTP >= 400 (the SDK hides status and body)

    async def on_response(resp: httpx2.Response) -> None:
        if resp.status_code >= 400 and resp.request.method == "POST":
            await resp.aread()
            last.update(status=resp.status_code, www_authenticate=resp.headers.get("www-authenticate"),
                        body=resp.text)

    def call_error(name: str, msg: str) -> dict:
        entry = {"tool": name, "ok": False, "error": msg}
        if last:
            entry.update(status=last["status"], body=last["body"])
        return entry

    async def call(session: ClientSession, name: str, args: dict, **kw) -> None:
        last.clear()
        try:
            r = await session.call_tool(name, args, **kw)
            text = "".join(c.text for c in r.content if getattr(c, "type", None) == "text")
            out["calls"].append(call_error(name, text) if r.is_error else {"tool": name, "ok": True, "text": text})
        except Exception as e:  # noqa: BLE001 - failures are data
            out["calls"].append(call_error(name, fail(e)))

    client = create_mcp_http_client(headers=headers)
    client.event_hooks = {"request": [], "response": [on_response]}
    async with client, streamable_http_client(url, http_client=client) as (read, write):
        async with ClientSession(read, write) as session:
            try:
                with anyio.fail_after(30):
                    await session.initialize()
                out["initialize"] = "ok"
            except Exception as e:  # noqa: BLE001
                out["initialize"] = {"error": fail(e), "status": last.get("status"),
                                     "www_authenticate": last.get("www_authenticate")}
                if last:
                    out["initialize"]["body"] = last["body"]
                return
            if scenario == "basic":
                try:
                    out["tools"] = [t.name for t in (await session.list_tools()).tools]
                except Exception:  # noqa: BLE001
                    out["tools"] = None
                await call(session, "echo", {"text": "hi"})
                await call(session, "whoami", {})
                await call(session, "secret_admin", {})
            elif scenario == "limited":
                await call(session, "whoami", {})
                await call(session, "whoami", {})
            elif scenario == "progress":
                start = time.monotonic()

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    out["progress"].append(round((time.monotonic() - start) * 1000))

                await call(session, "progress", {"steps": 3}, progress_callback=on_progress, read_timeout_seconds=30)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        print("usage: py_client.py <url> <basic|progress|initialize|limited>", file=sys.stderr)
        sys.exit(2)
    out = {"initialize": None, "tools": None, "calls": [], "progress": []}
    try:
        anyio.run(run, sys.argv[1], sys.argv[2], out)
    except BaseException as e:  # noqa: BLE001 - e.g. connection refused surfaces from the transport's task group
        if isinstance(e, KeyboardInterrupt):
            raise
        if out["initialize"] is None:
            out["initialize"] = {"error": fail(e), "status": None, "www_authenticate": None}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
