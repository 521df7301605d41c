"""Writes scripts/soak's result into BENCHMARKS.md's soak section: requests,
errors, latency, the gateway's resident memory over time, audit rows."""
import json
import pathlib
import statistics
import sys

from benchmarks_md import replace_section

# Memory is judged after the first minute: the cache, the pools and the
# allocator's arenas fill during warm-up, a leak shows afterwards.
WARM_UP_SAMPLES = 6


def main(oha_path, rss_path, peak, rate, duration, audited):
    oha = json.loads(pathlib.Path(oha_path).read_text())
    codes = {int(code): n for code, n in oha["statusCodeDistribution"].items()}
    answered = sum(codes.values())
    ok = codes.get(200, 0)
    failed = answered - ok + sum(oha.get("errorDistribution", {}).values())
    percentiles = oha["latencyPercentiles"]
    rss = [int(line) / 1024 for line in pathlib.Path(rss_path).read_text().split()]
    steady = rss[WARM_UP_SAMPLES:] or rss
    middle = statistics.median(steady)
    drift = max(abs(sample - middle) / middle for sample in steady)
    first_half, second_half = steady[: len(steady) // 2], steady[len(steady) // 2 :]
    trend = statistics.median(second_half) / statistics.median(first_half) - 1 if first_half else 0.0
    audited = int(audited)
    print(replace_section("soak", "Soak", [
        f"`keysmith gateway` on PostgreSQL, `oha -q {rate}` (80 % of the {int(peak):,} req/s peak measured "
        f"just before with wrk) for {int(duration)} s, POST of one MCP `tools/call`. Reproduce: `scripts/soak`.",
        "",
        "| measured | value | target |",
        "|---|---|---|",
        f"| requests answered | {answered:,} ({oha['summary']['requestsPerSec']:,.0f} req/s) | — |",
        f"| errors (non-200 answers and transport errors) | {failed:,} | 0 |",
        f"| latency p50 / p99 / p99.9 | {percentiles['p50'] * 1e6:,.0f} µs / {percentiles['p99'] * 1e6:,.0f} µs / "
        f"{percentiles['p99.9'] * 1e6:,.0f} µs | — |",
        f"| gateway RSS, {len(rss)} samples every 10 s | first {rss[0]:.1f} MiB, median after the first minute "
        f"{middle:.1f} MiB, max {max(rss):.1f} MiB | — |",
        f"| RSS after the first minute: largest distance from its median | {drift:.1%} | ±10 % |",
        f"| RSS trend: second half's median against the first half's | {trend:+.1%} | — |",
        f"| audit rows written for the soak key | {audited:,} of {answered:,} answered | equal |",
        "",
        "RSS samples, MiB, every 10 s while the load ran: " + ", ".join(f"{s:.1f}" for s in rss) + ".",
    ]))


if __name__ == "__main__":
    main(*sys.argv[1:])
