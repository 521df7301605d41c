"""Turns criterion's estimates into the verification and admin-page tables of BENCHMARKS.md."""
import json
import pathlib
import platform
import subprocess
import time

from benchmarks_md import replace_section

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRIT = ROOT / "target" / "criterion"


def median_ns(group: str, bench: str) -> float:
    path = CRIT / group / bench / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def machine() -> str:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"Machine: {cpu or platform.processor()}, {cores} cores."


def verify_section() -> None:
    rows = []
    compute = median_ns("compute", "parse_checksum_hmac_compare")
    argon = median_ns("compute", "argon2id_verify")
    rows.append(("verify compute (parse, CRC32, HMAC-SHA-256, constant-time compare)", fmt(compute), f"argon2id verify {fmt(argon)}", f"{argon / compute:,.0f}× faster", "≤ 2 µs"))
    sizes = sorted(
        {d.name.split("_", 2)[2] for d in CRIT.glob("db_*_*") if d.is_dir()},
        key=lambda label: int(label[:-1]) * {"k": 1_000, "M": 1_000_000}.get(label[-1], 1) if label[-1] in "kM" else int(label),
    )
    for engine in ("sqlite", "postgres"):
        verify_by_size = {}
        for size in sizes:
            group = f"db_{engine}_{size}"
            if not (CRIT / group / "verify_cache_off").exists():
                continue
            verify = median_ns(group, "verify_cache_off")
            floor = median_ns(group, "select_1")
            verify_by_size[size] = verify
            if engine == "sqlite":
                sqlx_path = median_ns(group, "verify_cache_off_through_sqlx")
                rows.append((f"verify through sqlite, cache off, {size} keys (direct read)", fmt(verify), f"`SELECT 1` through sqlx {fmt(floor)}; the same lookup through sqlx {fmt(sqlx_path)}", f"{verify / floor:.2f}× the round trip; {sqlx_path / verify:.1f}× faster than through sqlx", "≤ 25 µs"))
            else:
                rows.append((f"verify through postgres, cache off, {size} keys", fmt(verify), f"`SELECT 1` round trip {fmt(floor)}", f"{verify / floor:.2f}× the round trip", "≤ 1.3×"))
        if len(verify_by_size) > 1:
            small, big = sizes[0], sizes[-1]
            if small in verify_by_size and big in verify_by_size:
                ratio = verify_by_size[big] / verify_by_size[small]
                rows.append((f"{engine}: {big} keys against {small}", fmt(verify_by_size[big]), f"{small} keys {fmt(verify_by_size[small])}", f"{ratio:.2f}×", "flat within 10 % (≤ 1.10×)"))
    print(replace_section("verify", "Key verification", [
        f"{machine()} Reproduce: `scripts/bench`.",
        "",
        "| measured | median | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
    ]))


def admin_page_section() -> None:
    group = "admin_keys_page"
    small = median_ns(group, "small_tenant_first_page")
    rows = []
    for bench, what in [
        ("big_tenant_first_page", "first page, 100,000 keys"),
        ("big_tenant_page_at_50000", "page after the 50,000th key (cursor)"),
        ("big_tenant_rotating_filter", "filter: rotating"),
        ("big_tenant_service_user_filter", "filter: one service user"),
    ]:
        ns = median_ns(group, bench)
        rows.append((what, fmt(ns), f"first page, 100 keys: {fmt(small)}", f"{ns / small:.2f}×", "< 50 ms"))
    print(replace_section("admin", "Admin keys page at 100,000 keys", [
        f"{machine()} SQLite, signed-in GET over loopback HTTP (session lookup, tenant check, one page of 50 keys, render). Reproduce: `scripts/bench`.",
        "",
        "| page | median | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows],
    ]))


def key_page_section() -> None:
    group = "admin_key_page"
    small = median_ns(group, "key_with_100_audit_rows")
    big = median_ns(group, "key_with_many_audit_rows")
    busy = median_ns(group, "key_with_a_busy_hour")
    rows = int((CRIT / group / "rows.txt").read_text())
    hour_rows = int((CRIT / group / "hour_rows.txt").read_text())
    target_ns = 50e6
    verdict = "both meet" if max(big, busy) < target_ns else "do not both meet"
    scale = "" if rows >= 10_000_000 else (
        f" This run seeded only {rows:,} rows (`KEYSMITH_BENCH_AUDIT_ROWS`): a smoke run, not the 10,000,000-row measurement.")
    print(replace_section("key-page", "Admin key page at 10 million audit rows", [
        f"{machine()} SQLite, signed-in GET of `/admin/api-keys/{{id}}` over loopback HTTP: session, key, "
        "25 audit events, owner emails, and the 30-day tool histogram read from daily, hourly and minute rollups plus the last minute or two raw. "
        f"One key has {rows:,} tool calls over the 90 days up to the run, another {hour_rows:,} in the hour up to the run "
        f"({hour_rows / 3600:,.0f} a second); every complete day, hour and minute (30 s after it ends) rolled up, as the scheduler leaves them. "
        "Reproduce: `scripts/bench` (or `cargo bench --bench key_page -- --noplot && python3 scripts/bench_report.py`).",
        "",
        "| page | median | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        f"| key page, {rows:,} audit rows | {fmt(big)} | key page, 100 audit rows: {fmt(small)} | {big / small:.2f}× | < 50 ms |",
        f"| key page, {hour_rows:,} calls in the last hour | {fmt(busy)} | key page, 100 audit rows: {fmt(small)} | {busy / small:.2f}× | < 50 ms |",
        "",
        f"Reading it: the pages {verdict} the < 50 ms target ({fmt(big)} and {fmt(busy)}). "
        "The rolled-up days, hours and minutes cost at most 30 + 24 + 60 rollup rows per tool whatever the table holds; "
        "what still grows with the rate of calls is the raw tail after the newest minute rollup (a minute or two with the "
        f"scheduler's default 60 s interval), read by index on key and time.{scale}",
    ]))


if (CRIT / "compute").exists():
    verify_section()
if (CRIT / "admin_keys_page").exists():
    admin_page_section()
if (CRIT / "admin_key_page").exists():
    key_page_section()
