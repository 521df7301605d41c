"""Parses wrk and oha output into BENCHMARKS.md's load section.

Every figure is a median over the rounds of `scripts/bench-load`; ratios and
differences are taken within a round (against run (a) of that round) before
the median, so a slow round does not skew them.
"""
import json
import pathlib
import re
import statistics
import sys

from benchmarks_md import replace_section
from wrk_output import parse_wrk

PEAK = {
    "a": "(a) route, no layer",
    "b": "(b) layer, warm cache (SQLite)",
    "b0": "(b) without the audit writer",
    "c": "(c) layer, cache off, SQLite",
    "d": "(d) layer, cache off, PostgreSQL",
    "e": "(e) naive: argon2id per request",
}
FIXED = {"fa": "(a) route, no layer", "fb": "(b) layer, warm cache (SQLite), audit on"}


def parse_wrk_run(text: str) -> dict:
    """wrk's figures, its error count (non-2xx/3xx answers and socket errors) as `errors`."""
    row = parse_wrk(text)
    row["errors"] = row.pop("non2xx")
    return row


def parse_oha(text: str) -> dict:
    report = json.loads(text)
    percentiles = report["latencyPercentiles"]
    statuses = report.get("statusCodeDistribution", {})
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    return {
        "rps": report["summary"]["requestsPerSec"],
        "p50": percentiles["p50"] * 1e6,
        "p99": percentiles["p99"] * 1e6,
        "p999": percentiles["p99.9"] * 1e6,
        "requests": sum(statuses.values()),
        "errors": sum(statuses.values()) - ok + sum(report.get("errorDistribution", {}).values()),
    }


def load(path) -> dict:
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def add(results_path, round_, label, generator, out_path, err_path):
    text = pathlib.Path(out_path).read_text()
    written = re.search(r"audit_written=(\d+)", pathlib.Path(err_path).read_text())
    row = parse_wrk_run(text) if generator == "wrk" else parse_oha(text)
    row["audited"] = int(written.group(1)) if written else None
    if generator != "wrk":
        row["rate"] = float(generator)
    results = load(results_path)
    results.setdefault(round_, {})[label] = row
    pathlib.Path(results_path).write_text(json.dumps(results))


def half_peak(results_path, round_):
    print(int(load(results_path)[round_]["a"]["rps"] / 2))


def median(values) -> float:
    return statistics.median(values)


def audited(runs, label) -> str:
    rows = [r[label] for r in runs]
    if rows[0]["audited"] is None:
        return "—"
    return f"{sum(x['audited'] for x in rows):,} of {sum(x['requests'] for x in rows):,}"


def write(results_path, duration, rate_duration, connections, rounds):
    runs = list(load(results_path).values())
    peak_rows = []
    for label, name in PEAK.items():
        m = lambda field: median([r[label][field] for r in runs])
        share = median([r[label]["rps"] / r["a"]["rps"] for r in runs])
        added = median([r[label]["p99"] - r["a"]["p99"] for r in runs])
        errors = sum(r[label]["errors"] for r in runs)
        peak_rows.append(
            f"| {name} | {m('rps'):,.0f} | {share:.0%} | {m('p50'):,.0f} µs | {m('p99'):,.0f} µs | "
            f"{added:+,.0f} µs | {errors} | {audited(runs, label)} |"
        )
    fixed_rows = []
    for label, name in FIXED.items():
        m = lambda field: median([r[label][field] for r in runs])
        added = median([r[label]["p99"] - r["fa"]["p99"] for r in runs])
        errors = sum(r[label]["errors"] for r in runs)
        fixed_rows.append(
            f"| {name} | {m('rate'):,.0f} | {m('rps'):,.0f} | {m('p50'):,.0f} µs | {m('p99'):,.0f} µs | "
            f"{m('p999'):,.0f} µs | {added:+,.0f} µs | {errors} | {audited(runs, label)} |"
        )
    print(replace_section("load", "Verification layer under load", [
        f"Medians of {rounds} interleaved rounds on loopback, server and load generator sharing the 2 cores. "
        "Ratios and added latencies are taken within each round, then the median. Reproduce: `scripts/bench-load`.",
        "",
        f"Peak: `wrk -t1 -c{connections} -d{duration} --latency` (closed loop).",
        "",
        "| run | req/s | of (a) | p50 | p99 | p99 added vs (a) | errors | audit events written |",
        "|---|---|---|---|---|---|---|---|",
        *peak_rows,
        "",
        f"Fixed rate: `oha -q <50 % of (a)'s peak in the same round> -c{connections} -z{rate_duration} --latency-correction` "
        "(open loop: latency counted from when each request was due). Target: p99 added by the layer < 100 µs.",
        "",
        "| run | rate asked | req/s | p50 | p99 | p99.9 | p99 added vs (a) | errors | audit events written |",
        "|---|---|---|---|---|---|---|---|---|",
        *fixed_rows,
    ]))


if __name__ == "__main__":
    {
        "add": lambda: add(*sys.argv[2:8]),
        "half-peak": lambda: half_peak(*sys.argv[2:4]),
        "write": lambda: write(*sys.argv[2:7]),
    }[sys.argv[1]]()
