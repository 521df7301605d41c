"""Turns scripts/bench-startup's measurements into BENCHMARKS.md's start-up
section: medians over the interleaved rounds, the gateway of this checkout
against the gateway of BASE and against `keysmith serve`, same run."""
import collections
import statistics
import sys

from benchmarks_md import replace_section


def main(results_path, base, head, rounds, load):
    runs = collections.defaultdict(list)
    for line in open(results_path):
        label, micros, rss, hwm = line.split()
        runs[label].append((int(micros), int(rss), int(hwm)))

    def med(label, field):
        return statistics.median(run[field] for run in runs[label])

    rows = [
        ("base", f"`keysmith gateway` at `{base}` (before: migrates, builds mailer and sessions)"),
        ("head", f"`keysmith gateway` at `{head}` (now: verifier, limiter, audit sink, telemetry)"),
        ("serve", f"`keysmith serve` at `{head}` (the whole server, for reference)"),
    ]
    lines = [
        f"Each process on its own migrated SQLite database with one tenant; {rounds} interleaved rounds, medians. "
        "Start-up: spawn to the first `200` of its health route. Resident memory (VmRSS) when ready; peak (VmHWM) "
        f"after `wrk -t1 -c16 -d{load}` of MCP `tools/call`s (gateways) or health checks (serve). "
        "Reproduce: `scripts/bench-startup`.",
        "",
        "| process | start-up | of the gateway before | resident when ready | of the gateway before | peak after load |",
        "|---|---|---|---|---|---|",
    ]
    for label, title in rows:
        t, rss, hwm = med(label, 0), med(label, 1), med(label, 2)
        lines.append(
            f"| {title} | {t / 1000:.1f} ms | {t / med('base', 0):.2f}× | {rss / 1024:.1f} MiB "
            f"| {rss / med('base', 1):.2f}× | {hwm / 1024:.1f} MiB |"
        )
    print(replace_section("startup", "Gateway start-up and memory", lines))


if __name__ == "__main__":
    main(*sys.argv[1:])
