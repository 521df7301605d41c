"""Medians of scripts/bench-limits' interleaved rounds into BENCHMARKS.md's limits section."""
import json
import pathlib
import re
import statistics
import sys

from bench_load_report import to_us
from benchmarks_md import replace_section

LABELS = {
    "off": "limits off (key without limits)",
    "memory": "in-memory limiter (rate + tool override + quota)",
    "redis": "Redis limiter (one Lua script per call)",
}


def add(results_path, config, wrk_path):
    text = pathlib.Path(wrk_path).read_text()
    path = pathlib.Path(results_path)
    results = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault(config, []).append({
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p99": to_us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0,
    })
    path.write_text(json.dumps(results))


def per_round(runs):
    return ", ".join(format(x["rps"], ",.0f") for x in runs)


def write(results_path, duration, connections, rounds):
    r = json.loads(pathlib.Path(results_path).read_text())
    median = {c: {k: statistics.median(x[k] for x in runs) for k in ("rps", "p99")} for c, runs in r.items()}
    base = median["off"]["rps"]
    rows = [
        f"| {name} | {median[c]['rps']:,.0f} | {median[c]['rps'] / base:.0%} | {median[c]['p99']:,.0f} µs | "
        f"{per_round(r[c])} | {sum(x['non2xx'] for x in r[c])} |"
        for c, name in LABELS.items()
    ]
    print(replace_section("limits", "Limits under load", [
        f"MCP `tools/call` through the layer (warm cache, SQLite), `wrk -t1 -c{connections} -d{duration}` per run, "
        f"the three configurations interleaved over {rounds} rounds; medians. Target: in-memory ≥ 90 % of off. "
        "Reproduce: `scripts/bench-limits`.",
        "",
        "| configuration | req/s (median) | of off | p99 (median) | req/s per round | errors |",
        "|---|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    {"add": lambda: add(*sys.argv[2:5]), "write": lambda: write(*sys.argv[2:6])}[sys.argv[1]]()
