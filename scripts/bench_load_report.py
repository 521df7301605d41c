"""Parses wrk output into BENCHMARKS.md's load section (ratios against run (a))."""
import json
import pathlib
import re
import sys

from benchmarks_md import replace_section

LABELS = {
    "a": "(a) route, no layer",
    "b": "(b) layer, warm cache (SQLite)",
    "b0": "(b) without the audit writer",
    "c": "(c) layer, cache off, SQLite",
    "d": "(d) layer, cache off, PostgreSQL",
    "e": "(e) naive: argon2id per request",
}


def to_us(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if not match:
        raise SystemExit(f"unexpected wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 1, "ms": 1000, "s": 1_000_000, "m": 60_000_000}[unit]


def add(results_path, label, wrk_path, err_path):
    text = pathlib.Path(wrk_path).read_text()
    results = json.loads(pathlib.Path(results_path).read_text()) if pathlib.Path(results_path).exists() else {}
    written = re.search(r"audit_written=(\d+)", pathlib.Path(err_path).read_text())
    results[label] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": to_us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)),
        "p99": to_us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0,
        "audited": int(written.group(1)) if written else None,
    }
    pathlib.Path(results_path).write_text(json.dumps(results))


def write(results_path, duration, connections):
    r = json.loads(pathlib.Path(results_path).read_text())
    base = r["a"]
    rows = []
    for label, name in LABELS.items():
        x = r[label]
        audited = "—" if x["audited"] is None else f"{x['audited']:,} of {x['requests']:,}"
        rows.append(
            f"| {name} | {x['rps']:,.0f} | {x['rps'] / base['rps']:.0%} | {x['p50']:,.0f} µs | {x['p99']:,.0f} µs | "
            f"{x['p99'] - base['p99']:+,.0f} µs | {x['non2xx']} | {audited} |"
        )
    print(replace_section("load", "Verification layer under load", [
        f"`wrk -t1 -c{connections} -d{duration} --latency` on loopback, server and wrk sharing the 2 cores. Reproduce: `scripts/bench-load`.",
        "",
        "| run | req/s | of (a) | p50 | p99 | p99 added vs (a) | errors | audit events written |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]))

if __name__ == "__main__":
    {"add": lambda: add(*sys.argv[2:6]), "write": lambda: write(*sys.argv[2:5])}[sys.argv[1]]()
