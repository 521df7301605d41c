"""Turns scripts/bench-gateway's wrk runs into BENCHMARKS.md's gateway section:
medians over the interleaved rounds, as ratios against nginx in the same run."""
import json
import pathlib
import sqlite3
import statistics
import sys

from wrk_output import parse_wrk
from benchmarks_md import replace_section

LABELS = {
    "n": "(n) nginx `proxy_pass`, no authentication",
    "p": "(p) keysmith's proxy alone, no layer (the gateway minus verification)",
    "g": "(g) `keysmith gateway` (MCP mode, warm cache, audit on)",
    "t": "(t) the same gateway, an OAuth access token (client credentials) in place of the key",
    "r": "(r) nginx `auth_request` → forward-auth (`keysmith serve`)",
}
TARGETS = {"g": "≥ 0.75× (n), ≥ 4× (r)", "p": "≥ 0.9× (n)"}


def add(results_path, label, wrk_path):
    path = pathlib.Path(results_path)
    results = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault(label, []).append(parse_wrk(pathlib.Path(wrk_path).read_text()))
    path.write_text(json.dumps(results))


def median(runs, field):
    return statistics.median(run[field] for run in runs)


def write(results_path, duration, connections, rounds, database):
    results = json.loads(pathlib.Path(results_path).read_text())
    base = median(results["n"], "rps")
    auth = median(results["r"], "rps")
    proxy = median(results["p"], "rps")
    gateway = median(results["g"], "rps")
    rows = []
    for label, name in LABELS.items():
        runs = results[label]
        rps = median(runs, "rps")
        spread = ", ".join(f"{run['rps']:,.0f}" for run in runs)
        errors = sum(run["non2xx"] for run in runs)
        rows.append(
            f"| {name} | {rps:,.0f} | {spread} | {rps / base:.2f}× | {rps / auth:.2f}× | "
            f"{median(runs, 'p50'):,.0f} µs | {median(runs, 'p99'):,.0f} µs | {errors} | {TARGETS.get(label, '—')} |"
        )
    # The gateway reads the body and names the tool; forward-auth sees no
    # Mcp-Method header and names the request.
    with sqlite3.connect(database) as db:
        audited, forwarded = db.execute(
            "SELECT COALESCE(SUM(tool <> 'POST /mcp'), 0), COALESCE(SUM(tool = 'POST /mcp'), 0) "
            "FROM audit_events WHERE action = 'tool.call'"
        ).fetchone()
    token = median(results["t"], "rps")
    requests = sum(run["requests"] for run in results["g"] + results["t"])
    forward_requests = sum(run["requests"] for run in results["r"])
    print(replace_section("gateway", "Gateway against nginx", [
        f"`wrk -t1 -c{connections} -d{duration} --latency`, POST of one MCP `tools/call`, "
        f"{rounds} interleaved rounds, medians (every round's req/s in the spread column). "
        "Reproduce: `scripts/bench-gateway`.",
        "",
        "| run | req/s (median) | rounds | of (n) | of (r) | p50 | p99 | errors | target |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"The layer keeps {gateway / proxy:.0%} of its own proxy's rate ((g) of (p)); "
        f"the proxy alone is {proxy / base:.2f}× nginx. With a token in place of the key the "
        f"gateway serves {token / gateway:.2f}× its rate with the key ((t) of (g)).",
        "",
        f"Audit rows the gateway wrote: {audited:,} for {requests:,} requests wrk saw completed ((g) and (t)); "
        f"forward-auth: {forwarded:,} for {forward_requests:,} "
        "(each plus the script's checks and the requests in flight when wrk stopped).",
    ]))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"add": add, "write": write}[command](*args)
