"""Writes scripts/soak's result into BENCHMARKS.md's soak section: requests,
errors and latency per 10 s slice, the gateway's memory and the audit queue
beside PostgreSQL's checkpoints and vacuum runs, audit rows against
requests."""
import csv
import json
import os
import pathlib
import statistics
import sys

from benchmarks_md import replace_section

# Memory is judged after the first minute: the cache, the pools and the
# allocator's arenas fill during warm-up, a leak shows afterwards.
WARM_UP_SAMPLES = 6
SLICES_PER_MINUTE = 6
# A slice is called a stall when its p99 passes this multiple of the
# median slice's p99.
STALL_FACTOR = 10
# The unit of the CPU times sampled (USER_HZ ticks), in microseconds.
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def read_slice(path):
    oha = json.loads(path.read_text())
    codes = {int(code): n for code, n in oha["statusCodeDistribution"].items()}
    answered = sum(codes.values())
    percentiles = oha["latencyPercentiles"]
    # oha's own CPU seconds (user, system), bash `time`'s last line.
    user, system = path.with_suffix(".cpu").read_text().split()[-2:]
    return {
        "answered": answered,
        "oha_us": (float(user) + float(system)) * 1e6 / max(answered, 1),
        "failed": answered - codes.get(200, 0) + sum(oha.get("errorDistribution", {}).values()),
        "p50": (percentiles["p50"] or 0) * 1e3,
        "p99": (percentiles["p99"] or 0) * 1e3,
        "p999": (percentiles["p99.9"] or 0) * 1e3,
    }


def read_samples(path):
    with open(path, newline="") as f:
        return [{name: int(float(value)) for name, value in row.items()} for row in csv.DictReader(f)]


def spread(values):
    """Largest distance from the median, as a fraction of it."""
    middle = statistics.median(values)
    return max(abs(v - middle) / middle for v in values)


def vacuum_text(vacuum):
    """`<slice> <seconds>` as the script wrote it, or `- -` when the run was too short."""
    start, seconds = vacuum.split()
    if start == "-":
        return "not run"
    start_s = (int(start) - 1) * 10
    return f"from {start_s // 60}:{start_s % 60:02d} for {seconds} s"


def cpu_share(before, after, column):
    """The share of the machine's CPU time between two samples spent as `column`."""
    return f"{(after[column] - before[column]) / max(after['cpu_all'] - before['cpu_all'], 1):.0%}"


def cpu_shares(before, after):
    """Gateway / PostgreSQL / idle / stolen shares of the machine's CPU time between two samples."""
    return " / ".join(cpu_share(before, after, c) for c in ("cpu_gateway", "cpu_postgres", "cpu_idle", "cpu_steal"))


def per_minute(slices, baseline, samples):
    rows = []
    for start in range(0, len(slices), SLICES_PER_MINUTE):
        minute = slices[start : start + SLICES_PER_MINUTE]
        taken = samples[start : start + SLICES_PER_MINUTE]
        # PostgreSQL's counters are cumulative: the minute's runs are the
        # difference from the sample before it.
        before = samples[start - 1] if start else baseline
        rows.append(
            f"| {start // SLICES_PER_MINUTE + 1} | {sum(s['answered'] for s in minute) / (10 * len(minute)):,.0f} "
            f"| {max(s['p99'] for s in minute):,.1f} | {sum(s['failed'] for s in minute):,} "
            f"| {max(t['rss_kib'] for t in taken) / 1024:.1f} | {max(t['anon_kib'] for t in taken) / 1024:.1f} "
            f"| {max(t['huge_kib'] for t in taken) / 1024:.0f} | {max(t['threads'] for t in taken)} "
            f"| {max(t['fds'] for t in taken)} | {max(t['audit_queue'] for t in taken):,} "
            f"| {taken[-1]['upstream_opened'] - before['upstream_opened']:,} "
            f"/ {taken[-1]['handed_back'] - before['handed_back']:,} "
            f"| {taken[-1]['listen_drops'] - before['listen_drops']:,} "
            f"| {cpu_shares(before, taken[-1])} "
            f"| {taken[-1]['checkpoints'] - before['checkpoints']} "
            f"| {taken[-1]['vacuums'] - before['vacuums']} / {taken[-1]['analyzes'] - before['analyzes']} "
            f"| {max(t['pg_waiting'] for t in taken)} |"
        )
    return rows


def main(slices_dir, samples_path, peak, rate, duration, audited, vacuum, autovacuum):
    slices = [read_slice(p) for p in sorted(pathlib.Path(slices_dir).glob("*.json"))]
    # The first sample is taken before the load, the others one per slice.
    baseline, *samples = read_samples(samples_path)
    answered = sum(s["answered"] for s in slices)
    failed = sum(s["failed"] for s in slices)
    p99s = [s["p99"] for s in slices]
    median_p99 = statistics.median(p99s)
    stalls = [i for i, s in enumerate(slices) if s["p99"] > STALL_FACTOR * median_p99]
    rss = [t["rss_kib"] / 1024 for t in samples]
    steady = rss[WARM_UP_SAMPLES:] or rss
    first_half, second_half = steady[: len(steady) // 2], steady[len(steady) // 2 :]
    trend = statistics.median(second_half) / statistics.median(first_half) - 1 if first_half else 0.0
    audited = int(audited)
    ran = lambda column: samples[-1][column] - baseline[column]  # noqa: E731
    since = lambda i, column: samples[i][column] - (samples[i - 1] if i else baseline)[column]  # noqa: E731
    # Requests answered by sample i, taken mid-slice i (half of that slice, about).
    served_by = lambda i: sum(s["answered"] for s in slices[:i]) + slices[i]["answered"] / 2  # noqa: E731

    def gateway_us_per_request(i):
        """The gateway's CPU time (kernel included) per request since the sample before i."""
        served = served_by(i) - (served_by(i - 1) if i else 0)
        return since(i, "cpu_gateway") * TICK_US / max(served, 1)

    run_us = ran("cpu_gateway") * TICK_US / max(served_by(len(samples) - 1), 1)
    dearest = max(range(len(samples)), key=gateway_us_per_request)
    oha_us = statistics.median(s["oha_us"] for s in slices)
    oha_dearest = max(range(len(slices)), key=lambda i: slices[i]["oha_us"])
    stall_lines = [
        f"- {i * 10 // 60}:{i * 10 % 60:02d}: p99 {slices[i]['p99']:,.1f} ms, audit queue {samples[i]['audit_queue']:,}, "
        f"RSS {samples[i]['rss_kib'] / 1024:.1f} MiB, PostgreSQL backends waiting {samples[i]['pg_waiting']}; "
        f"since the sample before, upstream connections opened {since(i, 'upstream_opened'):,} "
        f"({since(i, 'handed_back'):,} requests served by one handed back while connecting), "
        f"listen-queue drops {since(i, 'listen_drops'):,}, CPU gateway / PostgreSQL / idle / stolen "
        f"{cpu_shares(samples[i - 1] if i else baseline, samples[i])}, gateway CPU per request "
        f"{gateway_us_per_request(i):.0f} µs (run {run_us:.0f} µs), oha's CPU per request "
        f"{slices[i]['oha_us']:.0f} µs (median slice {oha_us:.0f} µs)"
        for i in stalls
    ] or ["- none"]
    print(replace_section("soak", "Soak", [
        f"`keysmith gateway` on PostgreSQL, `oha -q {rate}` (80 % of the {int(peak):,} req/s peak measured "
        f"just before with oha, closed-loop) for {int(duration)} s in back-to-back 10 s slices, POST of one MCP `tools/call`. "
        "Reproduce: `scripts/soak`.",
        "",
        "| measured | value | target |",
        "|---|---|---|",
        f"| requests answered | {answered:,} ({answered / int(duration):,.0f} req/s) | — |",
        f"| errors (non-200 answers and transport errors) | {failed:,} | 0 |",
        f"| latency of the median slice: p50 / p99 | {statistics.median(s['p50'] for s in slices):,.2f} ms / "
        f"{median_p99:,.2f} ms | — |",
        f"| worst slice: p99 / p99.9 | {max(p99s):,.1f} ms / {max(s['p999'] for s in slices):,.1f} ms | — |",
        f"| slices with p99 over {STALL_FACTOR}× the median slice's | {len(stalls)} of {len(slices)} | — |",
        f"| gateway RSS, {len(rss)} samples | first {rss[0]:.1f} MiB, median after the first minute "
        f"{statistics.median(steady):.1f} MiB, max {max(rss):.1f} MiB | — |",
        f"| RSS after the first minute: largest distance from its median | {spread(steady):.1%} | ±10 % |",
        f"| RSS trend: second half's median against the first half's | {trend:+.1%} | — |",
        f"| of which anonymous (heap, stacks; the rest is the mapped binary): first / max "
        f"| {samples[0]['anon_kib'] / 1024:.1f} / {max(t['anon_kib'] for t in samples) / 1024:.1f} MiB | — |",
        f"| transparent huge pages, largest sample | {max(t['huge_kib'] for t in samples) / 1024:.0f} MiB | — |",
        f"| audit queue depth, largest sample | {max(t['audit_queue'] for t in samples):,} | — |",
        f"| upstream connections opened / requests served by one handed back while connecting "
        f"| {ran('upstream_opened'):,} / {ran('handed_back'):,} | — |",
        f"| connection attempts dropped on a full listen queue (kernel, whole machine) "
        f"| {ran('listen_drops'):,} | — |",
        f"| the machine's CPU time during the run: gateway / PostgreSQL / idle / stolen by the hypervisor "
        f"(the rest: oha, the upstream nginx, the kernel's loopback) | {cpu_shares(baseline, samples[-1])} | — |",
        f"| the gateway's CPU time per request (kernel included): the run / the dearest 10 s "
        f"| {run_us:.0f} µs / {gateway_us_per_request(dearest):.0f} µs "
        f"(at {dearest * 10 // 60}:{dearest * 10 % 60:02d}) | — |",
        f"| the load generator's (oha's) CPU time per request: the median slice / the dearest "
        f"| {oha_us:.0f} µs / {slices[oha_dearest]['oha_us']:.0f} µs "
        f"(at {oha_dearest * 10 // 60}:{oha_dearest * 10 % 60:02d}) | — |",
        f"| PostgreSQL during the run: checkpoints / vacuums / analyzes of audit_events "
        f"| {ran('checkpoints')} / {ran('vacuums')} / {ran('analyzes')} | — |",
        f"| `VACUUM (ANALYZE) audit_events` run by the script (server's autovacuum: {autovacuum}) "
        f"| {vacuum_text(vacuum)} | — |",
        f"| audit rows written for the soak key | {audited:,} of {answered:,} answered | equal |",
        "",
        "Stalled slices (start, minutes:seconds):",
        "",
        *stall_lines,
        "",
        "Per minute (the worst slice's p99, the minute's errors; samples taken mid-slice; PostgreSQL's runs "
        "started since the minute before):",
        "",
        "| min | req/s | p99 ms | errors | RSS MiB | anonymous MiB | huge pages MiB | threads | fds | audit queue "
        "| upstream opened / handed back | listen drops | CPU gateway / PG / idle / stolen | checkpoints | vacuum / analyze "
        "| PG waiting |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *per_minute(slices, baseline, samples),
    ]))


if __name__ == "__main__":
    main(*sys.argv[1:])
